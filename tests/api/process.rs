//! Running the real binary: start, wait, talk HTTP over a plain socket, stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_device-registry");

/// One HTTP/1.1 exchange over a fresh connection: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
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
    // A connection cut mid-answer (a killed server) is an I/O error, not an answer.
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete response")
        })?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A server process, on the port it bound itself (`127.0.0.1:0`: no test can race another for
/// a port), with what it writes on standard error.
pub struct Server {
    child: Child,
    /// The port of `--bind` (HTTP, or HTTPS when TLS is configured).
    pub port: u16,
    /// Every listener the server logged: (scheme, port).
    listeners: std::sync::Arc<std::sync::Mutex<Vec<(String, u16)>>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Starts the binary on the data directory, waits until it answers, and answers it.
pub fn start(data_dir: &std::path::Path, admin_key: Option<&str>) -> Server {
    start_with(data_dir, admin_key, &[])
}

/// [`start`] with more command-line arguments.
pub fn start_with(data_dir: &std::path::Path, admin_key: Option<&str>, args: &[&str]) -> Server {
    let mut command = Command::new(BINARY);
    if !args.contains(&"--bind") {
        command.args(["--bind", "127.0.0.1:0"]);
    }
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .current_dir(data_dir)
        .env_remove("DEVICE_REGISTRY_CONFIG")
        .env_remove("DEVICE_REGISTRY_ADMIN_KEY")
        // The addresses it listens on are logged by the server module.
        .env(
            "RUST_LOG",
            "warn,device_registry::server=info,device_registry::tls=info",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key) = admin_key {
        command.env("DEVICE_REGISTRY_ADMIN_KEY", key);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let listeners = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let logged = listeners.clone();
    // Reads standard error to its end, noting every listener as soon as it is logged.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on ").nth(1) {
                if let Some((scheme, port)) = rest.trim().split_once("://127.0.0.1:") {
                    let port = port.parse::<u16>().unwrap_or(0);
                    logged.lock().unwrap().push((scheme.to_owned(), port));
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut server = Server {
        child,
        port: 0,
        listeners,
        stderr: Some(reader),
    };
    let (scheme, port) = server.first_listener();
    server.port = port;
    wait_until_up(port, scheme == "https");
    server
}

impl Server {
    fn first_listener(&mut self) -> (String, u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(first) = self.listeners.lock().unwrap().first() {
                return first.clone();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited ({status}): {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not say where it listens"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The port of the listener of `scheme` other than `--bind`'s (`server.redirect_http`).
    pub fn second_port(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((_, port)) = self.listeners.lock().unwrap().get(1) {
                return *port;
            }
            assert!(
                Instant::now() < deadline,
                "the server logged one listener only"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// What the process wrote on standard error, once it has ended.
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until_up(port: u16, tls: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let up = match tls {
            // Without the client's roots here: a listener that accepts is up.
            true => TcpStream::connect(("127.0.0.1", port)).is_ok(),
            false => http(port, "GET", "/nothing", None, None).is_ok(),
        };
        if up {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not start");
}

/// SIGTERM, then the exit status.
pub fn terminate(server: &mut Server) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
