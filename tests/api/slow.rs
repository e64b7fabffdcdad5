//! Slow clients: a body that trickles in (or never comes) holds its connection no longer than
//! `server.body_timeout`, and does not hold up a shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::process::{start, terminate};

/// Sends a request head announcing a body of 100 bytes, and 4 of them.
fn begin_slow_body(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(
            b"POST /stats HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"ap",
        )
        .unwrap();
    stream
}

#[test]
fn a_body_that_does_not_arrive_is_408_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[server]\nbody_timeout = \"1s\"\n",
    )
    .unwrap();
    let mut server = start(dir.path(), None);
    let started = Instant::now();
    let mut stream = begin_slow_body(server.port);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );

    // A client still sending does not hold up a shutdown for long.
    let _held = begin_slow_body(server.port);
    std::thread::sleep(Duration::from_millis(100));
    let stopping = Instant::now();
    assert_eq!(terminate(&mut server).code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        stopping.elapsed()
    );
}
