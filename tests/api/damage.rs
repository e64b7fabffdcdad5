//! A data directory whose store files were emptied, truncated, removed or damaged is refused
//! at startup, in one clear line, by the server and by `check` alike: never started empty, never
//! a panic.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{http, start, terminate, BINARY};

const ADMIN: &str = "damage-admin-key";

/// A store with an app in it, stopped.
fn a_store(dir: &std::path::Path) {
    let mut server = start(dir, Some(ADMIN));
    let (status, _) = http(
        server.port,
        "POST",
        "/app",
        Some(ADMIN),
        Some(r#"{"app_id": "app_damage"}"#),
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(terminate(&mut server).code(), Some(0));
}

/// Runs the binary to its end; one that starts serving a damaged store instead of refusing it
/// would never end, so after a minute it is killed and the test fails.
fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    // Output goes to files, so that no amount of it can block the binary while it is waited on.
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("out"), logs.path().join("err"));
    let mut child = Command::new(BINARY)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .current_dir(dir)
        .env("DEVICE_REGISTRY_ADMIN_KEY", ADMIN)
        .env("RUST_LOG", "off")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!(
                "`{}` did not end: it started on a damaged store",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

#[test]
fn an_emptied_or_removed_store_is_refused_not_started_empty() {
    for damage in ["empty", "remove"] {
        let dir = tempfile::tempdir().unwrap();
        a_store(dir.path());
        let db = dir.path().join("db");
        match damage {
            "empty" => std::fs::write(&db, b"").unwrap(),
            _ => std::fs::remove_file(&db).unwrap(),
        }
        for args in [&["check"][..], &["--bind", "127.0.0.1:0"][..]] {
            let output = run(dir.path(), args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{damage} {args:?}: {stderr}");
            assert!(
                stderr.contains("damaged, truncated or removed"),
                "{damage} {args:?}: {stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
    }
}

#[test]
fn a_damaged_byte_is_an_error_line_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    a_store(dir.path());
    let db = dir.path().join("db");
    let pristine = std::fs::read(&db).unwrap();
    // Some offsets sled does not read back; every one must either open or be refused cleanly.
    for offset in [
        0,
        8,
        64,
        pristine.len() / 3,
        pristine.len() / 2,
        pristine.len() - 1,
    ] {
        let mut damaged = pristine.clone();
        damaged[offset] ^= 0xFF;
        std::fs::write(&db, &damaged).unwrap();
        let output = run(dir.path(), &["check"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(
            output.status.code(),
            Some(101),
            "offset {offset}: a panic: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "offset {offset}: {stderr}");
    }
}

#[test]
fn a_truncated_store_is_refused_and_check_repair_keeps_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), Some(ADMIN));
    let app = r#"{"app_id": "app_damage"}"#;
    assert_eq!(
        http(server.port, "POST", "/app", Some(ADMIN), Some(app))
            .unwrap()
            .0,
        201
    );
    for n in 0..300 {
        let body = format!(
            r#"{{"app_id": "app_damage", "device_id": "{n:08}-0000-4000-8000-000000000000",
                "platform": "ios", "version_name": "1.0.0", "version_build": "1",
                "version_os": "17", "plugin_version": "6.0.0", "is_emulator": false,
                "is_prod": true, "action": "get"}}"#
        );
        assert_eq!(
            http(server.port, "POST", "/stats", None, Some(&body))
                .unwrap()
                .0,
            200
        );
    }
    assert_eq!(terminate(&mut server).code(), Some(0));
    let db = dir.path().join("db");
    let pristine = std::fs::read(&db).unwrap();

    for percent in [30, 50, 90] {
        std::fs::write(&db, &pristine[..pristine.len() * percent / 100]).unwrap();
        for args in [&["check"][..], &["--bind", "127.0.0.1:0"][..]] {
            let output = run(dir.path(), args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{percent}% {args:?}: {stderr}"
            );
            assert!(
                stderr.contains("they lost their last writes (truncated or damaged)"),
                "{percent}% {args:?}: {stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
    }

    // The operator keeps what is left: `check --repair` takes it, and the server starts on it.
    let output = run(dir.path(), &["check", "--repair"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let server = start(dir.path(), Some(ADMIN));
    let (status, body) = http(
        server.port,
        "GET",
        "/device/summary?app_id=app_damage",
        Some(ADMIN),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
}
