//! The binary itself: configuration errors, the generated admin key, graceful shutdown, the
//! offline commands (dump, restore, compact).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

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

/// Runs an offline command of the binary on the sled store of `data_dir`, without any
/// configuration file the environment names.
fn offline(data_dir: &Path, args: &[&OsStr]) -> Output {
    Command::new(BINARY)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DEVICE_REGISTRY_CONFIG")
        .output()
        .unwrap()
}

/// `dump` and `restore` on stopped sled stores: what one dumps, another restores; a store that
/// holds something refuses a restore; both say what they did.
#[test]
fn dump_and_restore_move_a_stopped_store_into_another() {
    let source = tempfile::tempdir().unwrap();
    let mut server = start(source.path(), Some("cli-dump-key"));
    let key = Some("cli-dump-key");
    let app = r#"{"app_id": "app_cli_dump", "name": "d"}"#;
    assert_eq!(
        http(server.port, "POST", "/app", key, Some(app)).unwrap().0,
        201
    );
    let report = r#"{"app_id": "app_cli_dump", "device_id": "d1", "platform": "ios",
                     "action": "get", "version_build": "1.0.0"}"#;
    assert_eq!(
        http(server.port, "POST", "/stats", None, Some(report))
            .unwrap()
            .0,
        200
    );
    assert!(terminate(&mut server).success());

    let file = source.path().join("dump.ndjson");
    let dumped = offline(
        source.path(),
        &["dump".as_ref(), "--output".as_ref(), file.as_os_str()],
    );
    let stderr = String::from_utf8_lossy(&dumped.stderr);
    assert!(dumped.status.success(), "{stderr}");
    assert!(stderr.contains("dumped 3 records"), "{stderr}");

    let target = tempfile::tempdir().unwrap();
    let restore = || offline(target.path(), &["restore".as_ref(), file.as_os_str()]);
    let restored = restore();
    let stderr = String::from_utf8_lossy(&restored.stderr);
    assert!(restored.status.success(), "{stderr}");
    assert!(stderr.contains("restored 3 records"), "{stderr}");
    // Again: the store is no longer empty.
    let again = restore();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty store"));

    let mut server = start(target.path(), Some("cli-dump-key"));
    let (status, body) = http(
        server.port,
        "GET",
        "/device?app_id=app_cli_dump&device_id=d1",
        key,
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(terminate(&mut server).success());
}

/// `compact` writes a copy of a stopped store that serves what the store held, with the same
/// keys; it refuses a directory that is not empty, and a store a server holds.
#[test]
fn compact_writes_a_copy_that_serves_what_the_store_held() {
    let source = tempfile::tempdir().unwrap();
    let key = Some("cli-compact-key");
    let mut server = start(source.path(), key);
    let app = r#"{"app_id": "app_cli_compact", "name": "c"}"#;
    assert_eq!(
        http(server.port, "POST", "/app", key, Some(app)).unwrap().0,
        201
    );
    for version in ["1.0.0", "1.0.1"] {
        let report = format!(
            r#"{{"app_id": "app_cli_compact", "device_id": "d1", "platform": "ios",
                 "action": "get", "version_build": "{version}", "version_name": "{version}"}}"#
        );
        let (status, body) = http(server.port, "POST", "/stats", None, Some(&report)).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let device = "/device?app_id=app_cli_compact&device_id=d1";
    let (status, before) = http(server.port, "GET", device, key, None).unwrap();
    assert_eq!(status, 200, "{before}");

    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("compacted");
    let compact_into =
        |into: &Path| offline(source.path(), &["compact".as_ref(), into.as_os_str()]);
    let compact = || compact_into(&into);
    // The server holds the store.
    let held = compact();
    assert_eq!(held.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&held.stderr).contains("is a server using this data directory"));
    assert!(!into.exists());
    assert!(terminate(&mut server).success());

    let inside = compact_into(&source.path().join("copy"));
    assert_eq!(inside.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&inside.stderr).contains("is inside the data directory"));
    assert!(!source.path().join("copy").exists());

    let compacted = compact();
    let stderr = String::from_utf8_lossy(&compacted.stderr);
    assert!(compacted.status.success(), "{stderr}");
    assert!(stderr.contains("keys copied into"), "{stderr}");
    // Not into a directory that holds something.
    let again = compact();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not an empty directory"));

    let mut server = start(&into, key);
    let (status, after) = http(server.port, "GET", device, key, None).unwrap();
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before);
    assert!(terminate(&mut server).success());
}
