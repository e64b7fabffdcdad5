//! Several nodes on one PostgreSQL database: the real binary, three times, on a cluster of the
//! test's own (it is stopped and started again under load). Skipped, saying so, where
//! PostgreSQL is not installed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pg::OwnCluster;
use crate::process::*;

const ADMIN: &str = "nodes-admin-key";

/// A node's directory: its configuration (engine, database, a sweep every second) and nothing
/// else (no sled store is made).
fn node_dir(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("node.toml"),
        format!(
            "[storage]\nengine = \"postgres\"\n[storage.postgres]\nurl = \"{url}\"\npool_size = 4\n"
        ),
    )
    .unwrap();
    dir
}

fn start_node(dir: &tempfile::TempDir, admin_key: Option<&str>) -> Server {
    let config = dir.path().join("node.toml");
    start_with(
        dir.path(),
        admin_key,
        &["--config", config.to_str().unwrap()],
    )
}

fn cluster_or_skip(test: &str) -> Option<OwnCluster> {
    let cluster = OwnCluster::start();
    if cluster.is_none() {
        eprintln!(
            "SKIPPED {test}: PostgreSQL is not installed (Debian: apt-get install postgresql)"
        );
    }
    cluster
}

#[test]
fn nodes_starting_together_on_an_empty_database_create_one_admin_key() {
    let Some(cluster) = cluster_or_skip("nodes_starting_together...") else {
        return;
    };
    let url = cluster.url();
    let dirs: Vec<_> = (0..3).map(|_| node_dir(&url)).collect();
    let starting: Vec<_> = dirs
        .iter()
        .map(|dir| {
            let config = dir.path().join("node.toml");
            let path = dir.path().to_owned();
            std::thread::spawn(move || {
                start_with(&path, None, &["--config", config.to_str().unwrap()])
            })
        })
        .collect();
    let mut nodes: Vec<Server> = starting.into_iter().map(|t| t.join().unwrap()).collect();
    let mut created = 0;
    for node in &mut nodes {
        node.kill();
        created += node.stderr().matches("created an admin API key").count();
    }
    assert_eq!(created, 1, "one node, and one only, creates the first key");
}

#[test]
fn three_nodes_serve_one_registry_through_kills_and_a_database_restart() {
    let Some(cluster) = cluster_or_skip("three_nodes_serve_one_registry...") else {
        return;
    };
    let url = cluster.url();
    let dirs: Vec<_> = (0..3).map(|_| node_dir(&url)).collect();
    let mut nodes: Vec<Server> = dirs.iter().map(|d| start_node(d, Some(ADMIN))).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();

    // A write acknowledged by one node is seen by the next read on any other.
    let call = |node: usize, method: &str, path: &str, body: Option<&str>| {
        http(ports[node], method, path, Some(ADMIN), body).unwrap()
    };
    assert_eq!(
        call(
            0,
            "POST",
            "/app",
            Some(r#"{"app_id": "app_nodes", "name": "n"}"#)
        )
        .0,
        201
    );
    assert_eq!(
        call(
            1,
            "POST",
            "/channel",
            Some(r#"{"app_id": "app_nodes", "channel": "beta"}"#)
        )
        .0,
        201
    );
    let report = |device: &str| {
        format!(
            r#"{{"app_id": "app_nodes", "device_id": "{device}", "platform": "android",
                "action": "get", "version_build": "1.0.0", "version_name": "1.0.0"}}"#
        )
    };
    for (i, port) in ports.iter().enumerate() {
        let device = format!("d{i}");
        assert_eq!(
            http(*port, "POST", "/stats", None, Some(&report(&device)))
                .unwrap()
                .0,
            200
        );
        for other in 0..3 {
            let (status, body) = call(
                other,
                "GET",
                &format!("/device?app_id=app_nodes&device_id={device}"),
                None,
            );
            assert_eq!(status, 200, "node {other} reading {device}: {body}");
        }
    }
    let link = r#"{"app_id": "app_nodes", "device_id": "d0", "channel": "beta"}"#;
    assert_eq!(call(2, "POST", "/device", Some(link)).0, 200);
    let (_, body) = call(0, "GET", "/device?app_id=app_nodes&device_id=d0", None);
    assert!(body.contains(r#""channel":"beta""#), "{body}");

    // kill -9 of a node under load: every write it acknowledged is there, read elsewhere.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (acked, stop, port) = (acked.clone(), stop.clone(), ports[1]);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let device = format!("k{w}-{i}");
                    i += 1;
                    let body = format!(
                        r#"{{"app_id": "app_nodes", "device_id": "{device}", "channel": "beta"}}"#
                    );
                    match http(port, "POST", "/device", Some(ADMIN), Some(&body)) {
                        Ok((200, _)) => acked.lock().unwrap().push(device),
                        Ok((status, body)) => panic!("link answered {status}: {body}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    nodes[1].kill();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 10,
        "too few writes before the kill: {}",
        acked.len()
    );
    for device in &acked {
        let (status, body) = call(
            2,
            "GET",
            &format!("/device/audit?app_id=app_nodes&device_id={device}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""action":"link""#), "{device}: {body}");
    }

    // The database stopped under load: clean 503s meanwhile, then the nodes recover by
    // themselves; nothing acknowledged before is lost.
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (statuses, stop, port) = (statuses.clone(), stop.clone(), ports[0]);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for path in ["/health", "/device?app_id=app_nodes&device_id=d1"] {
                    if let Ok((status, body)) = http(port, "GET", path, Some(ADMIN), None) {
                        statuses.lock().unwrap().push((status, body));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    cluster.pg_ctl_stop();
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.pg_ctl_start();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if matches!(http(ports[0], "GET", "/health", None, None), Ok((200, _))) {
            break;
        }
        assert!(Instant::now() < deadline, "node 0 did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    let statuses = statuses.lock().unwrap();
    let unavailable = statuses.iter().filter(|(status, _)| *status == 503).count();
    assert!(unavailable > 0, "no 503 while the database was down");
    for (status, body) in statuses.iter() {
        assert!(
            *status == 200 || *status == 503,
            "while the database was down: {status} {body}"
        );
        if *status == 503 {
            assert!(!body.contains("postgres"), "a 503 leaks internals: {body}");
        }
    }
    // Node 2 too; and what was acknowledged before is all there.
    let (status, body) = call(2, "GET", "/device?app_id=app_nodes&device_id=d0", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""channel":"beta""#), "{body}");
    let last = acked.last().unwrap();
    let (status, _) = call(
        0,
        "GET",
        &format!("/device/audit?app_id=app_nodes&device_id={last}"),
        None,
    );
    assert_eq!(status, 200);
    for node in &mut nodes {
        node.kill();
    }
}

/// One sweep at a time across nodes: while another holds the sweep's lock, a node's sweep
/// removes nothing; once it is free, the node sweeps.
#[test]
fn a_node_does_not_sweep_while_another_is_sweeping() {
    let Some(cluster) = cluster_or_skip("a_node_does_not_sweep...") else {
        return;
    };
    let store = crate::common::postgres_store(&cluster.url());
    store.create_app("app_sweep", "s", 1).unwrap();
    let device = crate::common::seeded_device("app_sweep", "old".into(), 10);
    assert!(store.import_devices("app_sweep", &[device]).unwrap());

    // The other node: a session holding the lock the sweep takes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, connection) = runtime
        .block_on(tokio_postgres::connect(
            &cluster.url(),
            tokio_postgres::NoTls,
        ))
        .unwrap();
    runtime.spawn(connection);
    let lock = device_registry::store::postgres::SWEEP_LOCK;
    runtime
        .block_on(client.execute("SELECT pg_advisory_lock($1)", &[&lock]))
        .unwrap();
    let expired = store.expire_before(100, 1_000, 100).unwrap();
    assert_eq!(expired.devices, 0, "swept while another node sweeps");
    assert!(store.device_exists("app_sweep", "old").unwrap());

    runtime
        .block_on(client.execute("SELECT pg_advisory_unlock($1)", &[&lock]))
        .unwrap();
    let expired = store.expire_before(100, 1_000, 100).unwrap();
    assert_eq!(expired.devices, 1);
    assert!(!store.device_exists("app_sweep", "old").unwrap());
}

/// An app whose deletion was cut short (marked, contents partly left) is gone for every call,
/// and finished when a node next opens the database.
#[test]
fn a_deletion_cut_short_is_finished_when_a_node_next_opens_the_database() {
    let Some(cluster) = cluster_or_skip("a_deletion_cut_short...") else {
        return;
    };
    let url = cluster.url();
    let store = crate::common::postgres_store(&url);
    store.create_app("app_cut", "cut", 1).unwrap();
    let device = crate::common::seeded_device("app_cut", "d1".into(), 10);
    assert!(store.import_devices("app_cut", &[device]).unwrap());
    // What a deletion leaves when its node dies after marking the app.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (client, connection) = runtime
        .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    runtime
        .block_on(client.execute(
            "UPDATE apps SET deleting = true WHERE app_id = 'app_cut'",
            &[],
        ))
        .unwrap();
    assert!(!store.app_exists("app_cut").unwrap());
    assert!(store
        .apps()
        .unwrap()
        .iter()
        .all(|app| app.app_id != "app_cut"));
    // Its devices are gone for readers too, though their rows remain until it is finished.
    assert_eq!(store.device("app_cut", "d1").unwrap(), None);
    let query = device_registry::model::DeviceListQuery {
        order: device_registry::model::DeviceOrder::DeviceId,
        after: None,
        updated_after: None,
        limit: 10,
        max_examined: 100,
        filter: Default::default(),
    };
    assert!(store
        .list_devices("app_cut", &query)
        .unwrap()
        .devices
        .is_empty());

    let reopened = crate::common::postgres_store(&url);
    let left = runtime
        .block_on(client.query_one(
            "SELECT (SELECT count(*) FROM apps WHERE app_id = 'app_cut') \
             + (SELECT count(*) FROM devices WHERE app_id = 'app_cut')",
            &[],
        ))
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 0, "the deletion was not finished");
    assert!(matches!(
        reopened.create_app("app_cut", "again", 2).unwrap(),
        device_registry::store::CreateApp::Created(_)
    ));
}

/// A database that stops answering makes the health probe fail within seconds (a load balancer
/// takes the node out), not after the connection's timeouts; it is healthy again once the
/// database answers.
#[test]
fn the_health_probe_fails_within_seconds_when_the_database_stops_answering() {
    let Some(cluster) = cluster_or_skip("the_health_probe_fails...") else {
        return;
    };
    let url = cluster.url();
    let store = crate::common::postgres_store(&url);
    store.health().unwrap();
    // Another session holds the probe's table: the probe's write waits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut client, connection) = runtime
        .block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))
        .unwrap();
    runtime.spawn(connection);
    let holder = runtime.block_on(client.transaction()).unwrap();
    runtime
        .block_on(holder.batch_execute("LOCK TABLE health_probe IN ACCESS EXCLUSIVE MODE"))
        .unwrap();
    // Past the probe's one-second memory of its last answer.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let started = Instant::now();
    let error = store.health().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_transient(), "{error}");
    runtime.block_on(holder.rollback()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    store.health().unwrap();
}
