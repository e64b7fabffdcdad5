//! Certificates over ACME, end to end against pebble (Debian's `pebble`, the ACME test server),
//! started here on loopback with `pebble-challtestsrv` as its DNS (every name is 127.0.0.1):
//! issuance over TLS-ALPN-01 and HTTP-01, renewal, and a failed challenge that leaves the
//! certificate in use. Without pebble installed, the test says it was skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls::RootCertStore;

use crate::common::ADMIN;
use crate::https::{connect, TestCa};
use crate::process::{start_with, terminate, Server};

const NAME: &str = "registry.test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// pebble and its DNS, killed when dropped.
struct Pebble {
    children: Vec<Child>,
    directory: String,
    management: u16,
    /// The root pebble's own HTTPS listeners are signed by (our test CA), as a PEM file.
    own_root: PathBuf,
    own_ca: TestCa,
    /// Where pebble validates: TLS-ALPN-01 and HTTP-01.
    tls_port: u16,
    http_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl Pebble {
    fn start() -> Option<Self> {
        if !installed("pebble") || !installed("pebble-challtestsrv") {
            eprintln!("SKIPPED acme tests: pebble is not installed (apt-get install pebble)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let own_ca = TestCa::new();
        let (cert, key) = own_ca.issue(&["localhost"]);
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let own_root = dir.path().join("root.pem");
        std::fs::write(&own_root, &own_ca.pem).unwrap();
        let (acme, management, dns) = (free_port(), free_port(), free_port());
        let (tls_port, http_port) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(log("dns.log"))
            .stderr(log("dns.err"))
            .spawn()
            .unwrap();
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(dir.path().join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random waits or refused nonces; every order needs fresh validations.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let pebble = Self {
            children: vec![dns_server, pebble],
            directory: format!("https://localhost:{acme}/dir"),
            management,
            own_root,
            own_ca,
            tls_port,
            http_port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while connect(acme, "localhost", pebble.own_ca.roots(), &[], BOTH).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(pebble)
    }

    /// The root that signs the certificates pebble issues.
    fn issuing_roots(&self) -> RootCertStore {
        let mut client = connect(self.management, "localhost", self.own_ca.roots(), &[], BOTH)
            .expect("pebble's management interface");
        let (status, pem) = client.get("/roots/0", None);
        assert_eq!(status, 200, "{pem}");
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        roots
    }

    /// A configuration file for the server, with `extra` lines in `[server.acme]`.
    fn config(&self, dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[server.acme]\ndomains = [\"{NAME}\"]\ncontact = \"ops@{NAME}\"\n\
                 directory = \"{}\"\ndirectory_root = \"{}\"\n{extra}\n",
                self.directory,
                self.own_root.display()
            ),
        )
        .unwrap();
        path
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];

/// Waits until the server serves a certificate for NAME that `roots` trust and that is not
/// `other`; answers it.
fn wait_for_trusted(
    server: &mut Server,
    pebble: &Pebble,
    roots: &RootCertStore,
    other: Option<&[u8]>,
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(client) = connect(server.port, NAME, roots.clone(), &[], BOTH) {
            let served = client.certificate();
            if other != Some(&served[..]) {
                return served;
            }
        }
        if Instant::now() > deadline {
            server.kill();
            let log = |name: &str| std::fs::read_to_string(pebble._dir.path().join(name)).unwrap();
            panic!(
                "no trusted certificate within 60 s; the server said:\n{}\npebble said:\n{}{}",
                server.stderr(),
                log("pebble.log"),
                log("pebble.err")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/metrics` over HTTPS, trusting `roots`.
fn metrics(server: &Server, roots: &RootCertStore) -> String {
    let mut client = connect(server.port, NAME, roots.clone(), &[], BOTH).unwrap();
    let (status, text) = client.get("/metrics", Some(ADMIN));
    assert_eq!(status, 200, "{text}");
    text
}

fn start(dir: &Path, config: &Path, port: u16) -> Server {
    let bind = format!("127.0.0.1:{port}");
    start_with(
        dir,
        Some(ADMIN),
        &["--config", config.to_str().unwrap(), "--bind", &bind],
    )
}

#[test]
fn acme_issues_renews_and_keeps_the_certificate_when_a_challenge_fails() {
    let Some(pebble) = Pebble::start() else {
        return;
    };
    let roots = pebble.issuing_roots();
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();

    // Issuance over TLS-ALPN-01, on the HTTPS port itself.
    let config = pebble.config(files.path(), "renew_before = \"1d\"");
    let mut server = start(data.path(), &config, pebble.tls_port);
    let first = wait_for_trusted(&mut server, &pebble, &roots, None);
    let text = metrics(&server, &roots);
    assert!(
        text.contains("device_registry_tls_renewals_total 1"),
        "{text}"
    );
    assert!(
        text.contains("device_registry_tls_renewal_failures_total 0"),
        "{text}"
    );
    for kept in ["account.json", "certificate.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("acme").join(kept))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{kept}");
    }
    assert_eq!(terminate(&mut server).code(), Some(0));

    // Renewal: due at once with a long renew_before; the kept account orders a new one.
    let config = pebble.config(files.path(), "renew_before = \"100000d\"");
    let mut server = start(data.path(), &config, pebble.tls_port);
    let second = wait_for_trusted(&mut server, &pebble, &roots, Some(&first));
    assert_ne!(second, first);
    assert_eq!(terminate(&mut server).code(), Some(0));

    // A challenge that fails (pebble validates a port nobody listens on): the kept certificate
    // is served from the start and stays; /metrics says why.
    let elsewhere = loop {
        let port = free_port();
        if port != pebble.tls_port {
            break port;
        }
    };
    let mut server = start(data.path(), &config, elsewhere);
    let client = connect(server.port, NAME, roots.clone(), &[], BOTH).unwrap();
    assert_eq!(client.certificate(), second);
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = metrics(&server, &roots);
        if text.contains("device_registry_tls_renewal_failures_total 1") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the failure was not reported: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains("device_registry_tls_last_error_timestamp_seconds{error=\""),
        "{text}"
    );
    assert_eq!(
        connect(server.port, NAME, roots.clone(), &[], BOTH)
            .unwrap()
            .certificate(),
        second
    );
    assert_eq!(terminate(&mut server).code(), Some(0));

    // HTTP-01, answered on the plain listener.
    let data = tempfile::tempdir().unwrap();
    let config = pebble.config(
        files.path(),
        &format!(
            "challenge = \"http-01\"\n[server]\nredirect_http = \"127.0.0.1:{}\"",
            pebble.http_port
        ),
    );
    let mut server = start(data.path(), &config, free_port());
    wait_for_trusted(&mut server, &pebble, &roots, None);
    assert_eq!(terminate(&mut server).code(), Some(0));
}
