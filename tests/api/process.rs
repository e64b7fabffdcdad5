//! Running the real binary: start, wait, talk HTTP over a plain socket, stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_device-registry");

/// One HTTP/1.1 exchange over a fresh connection: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(key) = key {
        request.push_str(&format!("authorization: {key}\r\n"));
    }
    let body = body.unwrap_or("");
    request.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    // A connection cut mid-answer (a killed server) is an I/O error, not an answer.
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete response")
        })?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A server process, on the port it bound itself (`127.0.0.1:0`: no test can race another for
/// a port), with what it writes on standard error.
pub struct Server {
    child: Child,
    pub port: u16,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Starts the binary on the data directory, waits until it answers, and answers it.
pub fn start(data_dir: &std::path::Path, admin_key: Option<&str>) -> Server {
    start_with(data_dir, admin_key, &[])
}

/// [`start`] with more command-line arguments.
pub fn start_with(data_dir: &std::path::Path, admin_key: Option<&str>, args: &[&str]) -> Server {
    let mut command = Command::new(BINARY);
    command
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .current_dir(data_dir)
        .env_remove("DEVICE_REGISTRY_CONFIG")
        .env_remove("DEVICE_REGISTRY_ADMIN_KEY")
        // The address it listens on is logged by the server module.
        .env("RUST_LOG", "warn,device_registry::server=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key) = admin_key {
        command.env("DEVICE_REGISTRY_ADMIN_KEY", key);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (bound, port) = std::sync::mpsc::channel();
    // Reads standard error to its end, telling the port as soon as it is logged.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                let _ = bound.send(rest.trim().parse::<u16>().unwrap_or(0));
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let port = port
        .recv_timeout(Duration::from_secs(20))
        .expect("the server did not say where it listens");
    wait_until_up(port);
    Server {
        child,
        port,
        stderr: Some(reader),
    }
}

impl Server {
    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// What the process wrote on standard error, once it has ended.
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http(port, "GET", "/nothing", None, None).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not start");
}

/// SIGTERM, then the exit status.
pub fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
