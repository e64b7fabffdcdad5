//! Store calls that may wait never park the request workers: a large `DELETE /app` holds the
//! registry's lock for seconds, and requests that need the lock queue on the store's pool while
//! the workers go on answering everything else.

use std::thread;
use std::time::{Duration, Instant};

use device_registry::model::Device;

use crate::common::*;
use crate::process::{http, start, terminate};

const DEVICES: usize = 200_000;

/// Seen now (the server's sweep runs on the real clock).
fn device(app_id: &str, i: usize, now: u64) -> Device {
    seeded_device(app_id, format!("device_{i:07}"), now)
}

#[test]
fn a_large_delete_parks_no_worker() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    {
        let store = open_store(dir.path());
        store.create_app("app_big", "big", START).unwrap();
        store.create_app("app_small", "small", START).unwrap();
        let devices: Vec<Device> = (0..DEVICES).map(|i| device("app_big", i, now)).collect();
        for batch in devices.chunks(10_000) {
            assert!(store.import_devices("app_big", batch).unwrap());
        }
        assert!(store
            .import_devices("app_small", &[device("app_small", 1, now)])
            .unwrap());
        store.flush().unwrap();
    }
    eprintln!("seeded {DEVICES} devices in {:?}", seeded.elapsed());
    // Two request workers: two requests parked behind the delete would leave none.
    std::fs::write(dir.path().join("config.toml"), "[server]\nworkers = 2\n").unwrap();
    let mut server = start(dir.path(), Some(ADMIN));
    let port = server.port;

    let deleting = thread::spawn(move || {
        let started = Instant::now();
        let answer = http(port, "DELETE", "/app/app_big", Some(ADMIN), None).unwrap();
        (answer, started.elapsed())
    });
    thread::sleep(Duration::from_millis(200));
    // Writes that need the registry's lock wait for the delete, each on the store's pool.
    let waiting: Vec<_> = (0..3)
        .map(|i| {
            thread::spawn(move || {
                let body = format!(r#"{{"app_id": "app_new_{i}"}}"#);
                http(port, "POST", "/app", Some(ADMIN), Some(&body)).unwrap()
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let (health, _) = http(port, "GET", "/health", None, None).unwrap();
    let (read, body) = http(
        port,
        "GET",
        "/device?app_id=app_small&device_id=device_0000001",
        Some(ADMIN),
        None,
    )
    .unwrap();
    let answered = asked.elapsed();

    assert_eq!((health, read), (200, 200), "{body}");
    assert!(
        !deleting.is_finished(),
        "the delete ended before the reads were answered: it no longer shows anything"
    );
    let ((status, body), took) = deleting.join().unwrap();
    assert_eq!(status, 200, "{body}");
    for writer in waiting {
        assert_eq!(writer.join().unwrap().0, 201);
    }
    // The other app is whole.
    let (status, _) = http(
        port,
        "GET",
        "/device?app_id=app_small&device_id=device_0000001",
        Some(ADMIN),
        None,
    )
    .unwrap();
    assert_eq!(status, 200);
    eprintln!("reads answered in {answered:?} while the delete took {took:?}");
    // Parked workers would have held the reads until the delete was done (and the writes
    // behind it); served by free workers, they take a small part of its time.
    assert!(
        answered < took / 4,
        "reads took {answered:?}, the delete {took:?}: the reads waited for it"
    );

    assert_eq!(terminate(&mut server).code(), Some(0));
}
