//! The binary itself: configuration errors, the generated admin key, graceful shutdown.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_device-registry");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange over a fresh connection: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
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
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn start(data_dir: &std::path::Path, port: u16, admin_key: Option<&str>) -> Child {
    let mut command = Command::new(BINARY);
    command
        .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .current_dir(data_dir)
        .env_remove("DEVICE_REGISTRY_CONFIG")
        .env_remove("DEVICE_REGISTRY_ADMIN_KEY")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key) = admin_key {
        command.env("DEVICE_REGISTRY_ADMIN_KEY", key);
    }
    command.spawn().unwrap()
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

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn a_bad_config_file_is_exit_status_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[retention]\ndevice_ttl = \"forever\"\n").unwrap();
    let output = Command::new(BINARY)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retention.device_ttl"), "{stderr}");

    let output = Command::new(BINARY)
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    let output = Command::new(BINARY)
        .args(["--bind", "not an address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn first_start_prints_a_key_once_and_sigterm_flushes_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port, None);
    wait_until_up(port);
    let (status, body) = http(
        port,
        "POST",
        "/app",
        Some("wrong"),
        Some(r#"{"app_id": "app_cli"}"#),
    )
    .unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(terminate(&mut server).code(), Some(0));
    let stderr = stderr_of(&mut server);
    let key = stderr
        .split_whitespace()
        .find(|word| word.starts_with("dr_"))
        .unwrap_or_else(|| panic!("no key printed: {stderr}"))
        .to_owned();

    let mut server = start(dir.path(), port, None);
    wait_until_up(port);
    let (status, body) = http(
        port,
        "POST",
        "/app",
        Some(&key),
        Some(r#"{"app_id": "app_cli"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        port,
        "POST",
        "/channel",
        Some(&key),
        Some(r#"{"app_id": "app_cli", "channel": "beta"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(terminate(&mut server).code(), Some(0));
    let stderr = stderr_of(&mut server);
    assert!(
        !stderr.contains("dr_"),
        "a key was printed a second time: {stderr}"
    );

    // The configured admin key works beside the generated one, and the data is all there.
    let mut server = start(dir.path(), port, Some("configured-admin"));
    wait_until_up(port);
    let (status, body) = http(
        port,
        "GET",
        "/channel?app_id=app_cli&channel=beta",
        Some("configured-admin"),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(port, "GET", "/app/app_cli", Some(&key), None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(terminate(&mut server).code(), Some(0));
}
