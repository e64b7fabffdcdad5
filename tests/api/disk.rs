//! A full disk, for real: the data directory on a 20 MiB tmpfs, filled through `/stats` by new
//! devices as an unauthenticated client could. Needs to mount a filesystem (root, or a container
//! allowed to); elsewhere the test says it was skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::ADMIN;
use crate::process::{http, start_with, terminate, Server};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    mount: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let mount = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(mount.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Self { mount })
    }

    fn path(&self) -> &Path {
        self.mount.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a server that is still closing its files does not keep the mount.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount.path())
            .status();
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

/// A new device's check-in, with a long custom id so that the disk fills in a few thousand.
fn check_in(n: usize) -> String {
    json!({
        "app_id": "com.example.full",
        "device_id": format!("{n:08}-0000-4000-8000-000000000000"),
        "custom_id": "x".repeat(200),
        "platform": "android",
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "version_os": "14",
        "plugin_version": "6.0.0",
        "is_emulator": false,
        "is_prod": true,
        "action": "get",
    })
    .to_string()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "waited 15 s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn channel(server: &Server, name: &str) -> (u16, String) {
    http(
        server.port,
        "POST",
        "/channel",
        Some(ADMIN),
        Some(&json!({"app_id": "com.example.full", "channel": name}).to_string()),
    )
    .unwrap()
}

fn devices(server: &Server) -> u64 {
    let (status, body) = http(
        server.port,
        "GET",
        "/device/summary?app_id=com.example.full",
        Some(ADMIN),
        None,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    json_of(&body)["total"].as_u64().unwrap()
}

/// Checks new devices in from `first` on until the disk has refused 10 of them; answers how
/// many were acknowledged, and how many refused.
fn fill(server: &Server, first: usize) -> (u64, u64) {
    let mut acknowledged = 0;
    let mut refused = 0;
    for n in first..first + 100_000 {
        let (status, body) = http(server.port, "POST", "/stats", None, Some(&check_in(n))).unwrap();
        match status {
            200 => acknowledged += 1,
            503 => {
                assert_eq!(json_of(&body)["error"], "store_unavailable", "{body}");
                refused += 1;
                if refused == 10 {
                    return (acknowledged, refused);
                }
            }
            other => panic!("check-in {n} answered {other}: {body}"),
        }
    }
    panic!("the disk never filled");
}

/// Writes `path` until the disk has no byte left.
fn take_all_space(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![1u8; 4096];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
}

#[test]
fn a_full_disk_answers_503_keeps_reads_and_recovers_by_itself_when_space_returns() {
    let disk = match SmallDisk::mount("20m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_...: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data: PathBuf = disk.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // Room to give back later.
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![1u8; 6 << 20]).unwrap();
    // No free-space floor: the disk really fills (the floor has its own test).
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[storage]\nmin_free = \"0\"\n").unwrap();
    let args = ["--config", config.path().to_str().unwrap()];
    let mut server = start_with(&data, Some(ADMIN), &args);

    let (status, body) = http(
        server.port,
        "POST",
        "/app",
        Some(ADMIN),
        Some(r#"{"app_id": "com.example.full", "name": "full"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(channel(&server, "before").0, 201);

    // Fill it: every answer is 200 or a clean 503, never a 500. Then take what sled may free
    // by itself, and fill again, so that the disk stays full while the test looks.
    let (before_full, mut refused) = fill(&server, 0);
    let mut acknowledged = before_full;
    let rest = disk.path().join("rest");
    take_all_space(&rest);
    let (more, refused_more) = fill(&server, 200_000);
    acknowledged += more;
    refused += refused_more;

    // Full: writes that need room are refused cleanly, reads go on, /metrics answers.
    // A small write may still fit in a log segment sled already has: it is then on disk (and
    // found after the restart below); otherwise it is refused cleanly, never half done.
    let (status, body) = channel(&server, "while-full");
    let landed_while_full = match status {
        201 => true,
        503 => {
            assert_eq!(json_of(&body)["error"], "store_unavailable", "{body}");
            false
        }
        other => panic!("a write on a full disk answered {other}: {body}"),
    };
    // The probe is a small write too: where the one above still fit, this one may as well.
    // Otherwise /health says 503 within its probe's period (it writes at most once a second,
    // answering the last probe's result in between).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (status, body) = loop {
        let (status, body) = http(server.port, "GET", "/health", None, None).unwrap();
        if status == 503 || landed_while_full || std::time::Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    if landed_while_full {
        assert!(status == 200 || status == 503, "{status} {body}");
    } else {
        assert_eq!(status, 503, "{body}");
    }
    // Reads answer 200 or a clean 503, never a 500. Most go on; two cases answer 503 (README "A
    // full disk"): a read that needs sled to split or rewrite a page (sled does that lazily, on
    // the next access, and it is a write to its log), and any request while the supervisor
    // reopens the store once sled has freed room of its own. Which of them this run met depends
    // on sled's pages: printed, not asserted.
    let answers = |path: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = http(server.port, "GET", path, Some(ADMIN), None).unwrap();
            if status == 200 {
                return true;
            }
            assert_eq!(status, 503, "{path} on the full disk: {body}");
            assert_eq!(json_of(&body)["error"], "store_unavailable", "{body}");
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for path in ["/device?app_id=com.example.full&limit=1", "/metrics"] {
        let went_on = answers(path);
        eprintln!(
            "full disk: {path} {}",
            if went_on {
                "answered 200"
            } else {
                "answered 503"
            }
        );
    }

    // Space returns: the server serves again by itself, without a restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&rest).unwrap();
    wait_for("/health to answer 200", || {
        http(server.port, "GET", "/health", None, None).unwrap().0 == 200
    });
    assert_eq!(channel(&server, "after").0, 201);
    let (status, body) = http(
        server.port,
        "POST",
        "/stats",
        None,
        Some(&check_in(999_999)),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // Nothing acknowledged was lost: every management write; of the check-ins, those the
    // periodic flush wrote before the disk refused its writes (README: a crash or a full disk
    // loses the check-ins acknowledged since the last flush that reached the disk). The disk
    // filled over seconds and flushes run every 500 ms: most of the first fill's. A check-in
    // refused after its write had begun may be completed when the store reopens (README "A
    // full disk"): the refused ones may be there too, and nothing else.
    assert_eq!(terminate(&mut server).code(), Some(0));
    let server = start_with(&data, Some(ADMIN), &args);
    let mut expected = vec!["before", "after"];
    if landed_while_full {
        expected.push("while-full");
    }
    for name in expected {
        let (status, body) = http(
            server.port,
            "GET",
            &format!("/channel?app_id=com.example.full&channel={name}"),
            Some(ADMIN),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "channel {name}: {body}");
    }
    let kept = devices(&server);
    assert!(
        kept > before_full / 2 && kept <= acknowledged + refused + 1,
        "{kept} devices kept of {acknowledged} acknowledged and {refused} refused \
         ({before_full} acknowledged before the disk first refused a write, and one after)"
    );
}
