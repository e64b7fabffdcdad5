//! A throwaway PostgreSQL cluster for the tests that run on the PostgreSQL engine: `initdb` in a
//! temporary directory, `postgres` on a free port, one schema per test. Started once per test
//! process, on first use; stopped when the process ends (its watcher reads the process's end
//! from a pipe), however the process ends.
//!
//! The suite runs on PostgreSQL when `DEVICE_REGISTRY_TEST_ENGINE=postgres`; without Debian's
//! `postgresql` package there, the harness says so and those runs are skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub port: u16,
    /// Keeps the watcher's stdin open: when the test process ends, it closes and the watcher
    /// stops the cluster.
    _lifeline: Mutex<std::process::ChildStdin>,
    /// Ends with the test process (it is never waited for: it outlives the tests' threads).
    _watcher: Mutex<std::process::Child>,
    _dir: tempfile::TempDir,
}

/// Whether the tests run on the PostgreSQL engine.
pub fn wanted() -> bool {
    std::env::var("DEVICE_REGISTRY_TEST_ENGINE").is_ok_and(|engine| engine == "postgres")
}

/// The directory of PostgreSQL's server programs, if installed.
pub fn bin_dir() -> Option<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// The cluster of this process, started on first use; `None` (after saying so) when PostgreSQL
/// is not installed.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let Some(bin) = bin_dir() else {
                eprintln!(
                    "SKIPPED: PostgreSQL is not installed (Debian: apt-get install postgresql)"
                );
                return None;
            };
            Some(start(&bin))
        })
        .as_ref()
}

/// Whether running as root, where PostgreSQL refuses to run: the cluster then belongs to the
/// `postgres` user that Debian's package creates.
fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// A shell command, run as the cluster's owner.
fn run_as(script: String) -> Command {
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", &script]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", &script]);
        command
    }
}

/// A temporary directory with an initialised cluster in `data/`.
fn initdb(bin: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("device-registry-pg")
        .tempdir()
        .expect("a temporary directory");
    if as_root() {
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown of the cluster's directory failed");
    }
    let initdb = run_as(format!(
        "{} -D {} -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null",
        shell_quote(&bin.join("initdb")),
        shell_quote(&dir.path().join("data"))
    ))
    .status()
    .expect("initdb");
    assert!(initdb.success(), "initdb failed");
    dir
}

/// The server's settings for tests: durability traded for speed (a test's data dies with it).
const TEST_SETTINGS: &str = "-c listen_addresses=127.0.0.1 -c fsync=off \
     -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
     -c shared_buffers=64MB";

fn start(bin: &Path) -> Cluster {
    let dir = initdb(bin);
    let data = dir.path().join("data");
    let port = free_port();
    // The watcher: starts postgres, waits for its own stdin to close (the test process ended),
    // then stops it (fast shutdown).
    let script = format!(
        "{postgres} -D {data} -p {port} -k {socket} {TEST_SETTINGS} >{log} 2>&1 & pid=$!; \
         cat >/dev/null; kill -INT $pid; wait $pid",
        postgres = shell_quote(&bin.join("postgres")),
        data = shell_quote(&data),
        socket = shell_quote(dir.path()),
        log = shell_quote(&dir.path().join("postgres.log")),
    );
    let mut watcher = run_as(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the cluster's watcher");
    let lifeline = watcher.stdin.take().expect("the watcher's stdin");
    wait_for(port, dir.path());
    Cluster {
        port,
        _lifeline: Mutex::new(lifeline),
        _watcher: Mutex::new(watcher),
        _dir: dir,
    }
}

/// Waits until the cluster on `port` accepts connections.
fn wait_for(port: u16, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "postgres did not start: {}",
            std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Accepting connections may come a moment after listening.
    std::thread::sleep(Duration::from_millis(200));
}

/// A cluster of one test's own, which it stops and starts again (`pg_ctl`); stopped when
/// dropped.
pub struct OwnCluster {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl OwnCluster {
    /// `None` when PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let bin = bin_dir()?;
        let dir = initdb(&bin);
        let cluster = OwnCluster {
            port: free_port(),
            bin,
            dir,
        };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, action: &str) -> bool {
        run_as(format!(
            "{pg_ctl} -D {data} -l {log} -w -m fast -o '-p {port} -k {socket} {TEST_SETTINGS}' \
             {action} >/dev/null",
            pg_ctl = shell_quote(&self.bin.join("pg_ctl")),
            data = shell_quote(&self.dir.path().join("data")),
            log = shell_quote(&self.dir.path().join("postgres.log")),
            socket = shell_quote(self.dir.path()),
            port = self.port,
        ))
        .status()
        .is_ok_and(|status| status.success())
    }

    pub fn pg_ctl_start(&self) {
        assert!(self.pg_ctl("start"), "pg_ctl start failed");
        wait_for(self.port, self.dir.path());
    }

    pub fn pg_ctl_stop(&self) {
        assert!(self.pg_ctl("stop"), "pg_ctl stop failed");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

impl Cluster {
    /// The URL of the cluster's `postgres` database, its tables in `schema`.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?options=-csearch_path%3D{schema}",
            self.port
        )
    }

    /// A fresh, empty schema of its own for one test (or one group of nodes).
    pub fn fresh_schema(&self) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        self.psql(&format!("CREATE SCHEMA {schema}"));
        schema
    }

    /// Runs SQL through `psql` (setup only).
    pub fn psql(&self, sql: &str) {
        let bin = bin_dir().expect("postgres binaries");
        let psql = if bin.join("psql").exists() {
            bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let mut child = Command::new(psql)
            .args([
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("psql");
        child
            .stdin
            .take()
            .expect("psql's stdin")
            .write_all(sql.as_bytes())
            .expect("psql's input");
        assert!(child.wait().expect("psql").success(), "psql failed: {sql}");
    }
}
