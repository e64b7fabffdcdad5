//! Soak: the real server under mixed load (check-ins, lists, links, unlinks, stats) for a
//! bounded time while the sweep runs and expires devices, then asserts zero 5xx, zero lost
//! acknowledged writes and a consistent index.
//!
//!     cargo bench --bench soak                  # SECS=60 CLIENTS=8
//!
//! Each client owns a set of devices and keeps a model of what it was told: after the load, the
//! server is stopped, `device-registry check` must find it clean, and once restarted every owned
//! device must show the override of the last acknowledged link or unlink. Devices reported once
//! at the start ("ephemeral") are left to expire: the TTL is 15 s and the sweep runs every second.

#[path = "common.rs"]
mod common;
#[path = "../tests/api/process.rs"]
#[allow(dead_code)]
mod process;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use process::BINARY;
const ADMIN: &str = "soak-admin-key";
const APP: &str = "app_soak";
const OWNED_PER_CLIENT: usize = 40;
const EPHEMERAL: usize = 2_000;

/// One request over a fresh connection (the helper the integration tests use).
fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    process::http(port, method, path, key, Some(body))
}

fn start(dir: &std::path::Path, port: u16) -> Child {
    let config = dir.join("soak.toml");
    std::fs::write(
        &config,
        "[retention]\ndevice_ttl = \"15s\"\nsweep_interval = \"1s\"\n[devices]\ntouch_interval = \"1s\"\n",
    )
    .unwrap();
    let child = Command::new(BINARY)
        .args(["--config"])
        .arg(&config)
        .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("data"))
        .env("DEVICE_REGISTRY_ADMIN_KEY", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/health", None, "").is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(child: &mut Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "server exited with {status}");
}

#[derive(Default)]
struct Tally {
    requests: u64,
    server_errors: u64,
    other_errors: u64,
    latencies_us: Vec<u64>,
    /// device -> the channel of the last acknowledged link, or None after an unlink.
    expected: HashMap<String, Option<String>>,
}

fn device_body(device: &str) -> String {
    format!(
        r#"{{"app_id": "{APP}", "device_id": "{device}", "platform": "ios", "version_name": "1.0.0", "version_build": "1.0.0", "plugin_version": "6.0.0", "action": "get"}}"#
    )
}

fn client(port: u16, id: usize, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let devices: Vec<String> = (0..OWNED_PER_CLIENT)
        .map(|i| format!("owned-{id}-{i}"))
        .collect();
    let mut step = 0usize;
    while Instant::now() < until {
        let device = &devices[step % devices.len()];
        let op = (step / devices.len() + id) % 5;
        step += 1;
        let started = Instant::now();
        let (method, path, key, body) = match op {
            0 => ("POST", "/updates".to_owned(), None, device_body(device)),
            1 => ("POST", "/stats".to_owned(), None, device_body(device)),
            2 => {
                let channel = if step % 2 == 0 { "beta" } else { "alpha" };
                let body = format!(
                    r#"{{"app_id": "{APP}", "device_id": "{device}", "channel": "{channel}"}}"#
                );
                ("POST", "/device".to_owned(), Some(ADMIN), body)
            }
            3 => {
                let body = format!(r#"{{"app_id": "{APP}", "device_id": "{device}"}}"#);
                ("DELETE", "/device".to_owned(), Some(ADMIN), body)
            }
            _ => (
                "GET",
                format!("/device/?app_id={APP}&limit=50&order=desc"),
                Some(ADMIN),
                String::new(),
            ),
        };
        let answer = http(port, method, &path, key, &body);
        tally
            .latencies_us
            .push(started.elapsed().as_micros() as u64);
        tally.requests += 1;
        match answer {
            Ok((status, _)) if status >= 500 => tally.server_errors += 1,
            Ok((200, _)) => match op {
                2 => {
                    let channel = if step % 2 == 0 { "beta" } else { "alpha" };
                    tally
                        .expected
                        .insert(device.clone(), Some(channel.to_owned()));
                }
                3 => {
                    tally.expected.insert(device.clone(), None);
                }
                _ => {}
            },
            Ok(_) | Err(_) => tally.other_errors += 1,
        }
    }
    // A last check-in so that every owned device exists (and is fresh) when the load stops.
    for device in &devices {
        let _ = http(port, "POST", "/stats", None, &device_body(device));
    }
    tally
}

fn main() {
    let secs = common::env_or("SECS", 60);
    let clients = common::env_or("CLIENTS", 8) as usize;
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = start(dir.path(), port);

    assert_eq!(
        http(
            port,
            "POST",
            "/app",
            Some(ADMIN),
            &format!(r#"{{"app_id": "{APP}"}}"#)
        )
        .unwrap()
        .0,
        201
    );
    http(port, "POST", "/bundle", Some(ADMIN), &format!(r#"{{"app_id": "{APP}", "version": "1.1.0", "external_url": "https://x.example/1.1.0.zip", "checksum": "c"}}"#)).unwrap();
    for (channel, public) in [("production", true), ("beta", false), ("alpha", false)] {
        let body = format!(
            r#"{{"app_id": "{APP}", "channel": "{channel}", "public": {public}, "version": "1.1.0"}}"#
        );
        assert!(
            http(port, "POST", "/channel", Some(ADMIN), &body)
                .unwrap()
                .0
                < 300
        );
    }
    for i in 0..EPHEMERAL {
        http(
            port,
            "POST",
            "/stats",
            None,
            &device_body(&format!("ephemeral-{i}")),
        )
        .unwrap();
    }

    println!("soak: {secs} s, {clients} clients, TTL 15 s, sweep every 1 s");
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let workers: Vec<_> = (0..clients)
        .map(|id| std::thread::spawn(move || client(port, id, until)))
        .collect();
    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();

    let requests: u64 = tallies.iter().map(|t| t.requests).sum();
    let server_errors: u64 = tallies.iter().map(|t| t.server_errors).sum();
    let other_errors: u64 = tallies.iter().map(|t| t.other_errors).sum();
    let mut latencies: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1000.0
    };
    println!(
        "requests {requests} ({:.0}/s), 5xx {server_errors}, other failures {other_errors}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        requests as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    let (_, metrics) = http(port, "GET", "/metrics", Some(ADMIN), "").unwrap();
    let swept = metrics
        .lines()
        .find_map(|l| l.strip_prefix("device_registry_sweep_devices_removed_total "))
        .unwrap_or("?")
        .to_owned();
    println!("sweep removed {swept} devices during the soak");

    stop(&mut server);
    let check = Command::new(BINARY)
        .arg("check")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    print!("check: {}", String::from_utf8_lossy(&check.stdout));
    assert!(
        check.status.success(),
        "the index is not consistent after the soak"
    );

    let mut server = start(dir.path(), port);
    let mut lost = 0;
    let mut verified = 0;
    for tally in &tallies {
        for (device, channel) in &tally.expected {
            let (status, body) = http(
                port,
                "GET",
                &format!("/device/?app_id={APP}&device_id={device}"),
                Some(ADMIN),
                "",
            )
            .unwrap();
            let shown = match channel {
                Some(channel) => {
                    status == 200 && body.contains(&format!(r#""channel":"{channel}""#))
                }
                None => status == 200 && !body.contains(r#""channel":"#),
            };
            verified += 1;
            if !shown {
                lost += 1;
                eprintln!("lost: {device} expected {channel:?}, got {status} {body}");
            }
        }
    }
    stop(&mut server);
    println!("acknowledged overrides verified after restart: {verified}, lost: {lost}");
    assert_eq!(server_errors, 0, "5xx answers during the soak");
    assert_eq!(lost, 0, "acknowledged writes were lost");
    println!("soak passed");
}
