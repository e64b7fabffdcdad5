//! Crash safety: writers hit the real binary, which is killed with SIGKILL at a random moment.
//! After a restart every acknowledged write is there, and the time index lists exactly the
//! devices that the primary tree holds.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use crate::process::*;

const ADMIN: &str = "crash-admin-key";
const WRITERS: usize = 4;

/// Writes until the server dies; returns the devices whose link was acknowledged.
fn writer(
    port: u16,
    id: usize,
    round: usize,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let device = format!("r{round}-w{id}-{i}");
        i += 1;
        let report = format!(
            r#"{{"app_id": "app_crash", "device_id": "{device}", "platform": "android", "action": "get", "version_build": "1.0.0"}}"#
        );
        if !matches!(
            http(port, "POST", "/stats", None, Some(&report)),
            Ok((200, _))
        ) {
            return;
        }
        let link =
            format!(r#"{{"app_id": "app_crash", "device_id": "{device}", "channel": "beta"}}"#);
        match http(port, "POST", "/device", Some(ADMIN), Some(&link)) {
            Ok((200, _)) => acked.lock().unwrap().push(device),
            Ok((status, body)) => panic!("link answered {status}: {body}"),
            Err(_) => return,
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut all_acked: Vec<String> = Vec::new();

    let mut server = start(dir.path(), Some(ADMIN));
    let mut port = server.port;
    assert_eq!(
        http(
            port,
            "POST",
            "/app",
            Some(ADMIN),
            Some(r#"{"app_id": "app_crash"}"#)
        )
        .unwrap()
        .0,
        201
    );
    let channel = r#"{"app_id": "app_crash", "channel": "beta"}"#;
    assert_eq!(
        http(port, "POST", "/channel", Some(ADMIN), Some(channel))
            .unwrap()
            .0,
        201
    );

    for round in 0..3 {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|id| {
                let (acked, stop) = (acked.clone(), stop.clone());
                std::thread::spawn(move || writer(port, id, round, acked, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..900)));
        server.kill(); // SIGKILL: no shutdown, no flush.
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert!(
            !acked.is_empty(),
            "round {round}: no write was acknowledged before the kill"
        );
        all_acked.extend(acked);

        // Offline: the indexes match the records.
        let check = Command::new(BINARY)
            .arg("check")
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "round {round}: check found problems:\n{printed}"
        );

        // Online: every acknowledged link (and the device it needed) is there.
        server = start(dir.path(), Some(ADMIN));
        port = server.port;
        for device in &all_acked {
            let (status, body) = http(
                port,
                "GET",
                &format!("/device/?app_id=app_crash&device_id={device}"),
                Some(ADMIN),
                None,
            )
            .unwrap();
            assert_eq!(
                status, 200,
                "round {round}: acknowledged device {device} lost: {body}"
            );
            assert!(
                body.contains(r#""channel":"beta""#),
                "round {round}: override of {device} lost: {body}"
            );
        }
    }
    assert_eq!(terminate(&mut server).code(), Some(0));
}

#[test]
fn an_app_deletion_cut_short_by_kill_9_is_finished_at_the_next_start() {
    use device_registry::model::Device;

    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    {
        let store = crate::common::open_store(dir.path());
        store.create_app("app_gone", "gone", now).unwrap();
        let devices: Vec<Device> = (0..50_000)
            .map(|i| {
                let mut device = crate::common::seeded_device("app_gone", format!("d{i:06}"), now);
                device.report.custom_id = format!("user-{}", i % 100);
                device
            })
            .collect();
        for batch in devices.chunks(10_000) {
            assert!(store.import_devices("app_gone", batch).unwrap());
        }
        store.flush().unwrap();
    }
    let mut server = start(dir.path(), Some(ADMIN));
    let port = server.port;
    let deleting =
        std::thread::spawn(move || http(port, "DELETE", "/app/app_gone", Some(ADMIN), None));
    // The app record goes first, its devices after: the moment it is gone, the deletion is
    // under way and far from done (seconds of devices in a debug build).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = http(port, "GET", "/app/app_gone", Some(ADMIN), None).unwrap();
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deletion never began"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let cut_short = deleting.join().unwrap();
    assert!(
        cut_short.is_err(),
        "the deletion ended first: {cut_short:?}"
    );

    // The next start finishes it: the app is gone whole, and the store is consistent.
    let mut server = start(dir.path(), Some(ADMIN));
    let (status, _) = http(server.port, "GET", "/app/app_gone", Some(ADMIN), None).unwrap();
    assert_eq!(status, 404);
    let report = r#"{"app_id": "app_gone", "device_id": "late", "platform": "ios", "action": "get", "version_build": "1.0.0"}"#;
    let (_, body) = http(server.port, "POST", "/stats", None, Some(report)).unwrap();
    assert!(body.contains("app_not_found"), "{body}");
    assert_eq!(terminate(&mut server).code(), Some(0));
    let check = Command::new(BINARY)
        .arg("check")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{printed}");
}
