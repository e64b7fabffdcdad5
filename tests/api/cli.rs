//! The binary itself: configuration errors, the generated admin key, graceful shutdown.

use std::process::Command;

use crate::process::*;

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
    let mut server = start(dir.path(), None);
    let port = server.port;
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
    let stderr = server.stderr();
    let key = stderr
        .split_whitespace()
        .find(|word| word.starts_with("dr_"))
        .unwrap_or_else(|| panic!("no key printed: {stderr}"))
        .to_owned();

    let mut server = start(dir.path(), None);
    let port = server.port;
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
    let stderr = server.stderr();
    assert!(
        !stderr.contains("dr_"),
        "a key was printed a second time: {stderr}"
    );

    // The configured admin key works beside the generated one, and the data is all there.
    let mut server = start(dir.path(), Some("configured-admin"));
    let port = server.port;
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
