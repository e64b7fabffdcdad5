//! HTTPS with certificate files, on the real binary, with a real TLS client (rustls): TLS 1.2
//! and 1.3 only, HTTP/2 offered over ALPN, the certificate swapped under a live connection
//! (files changed on disk, and SIGHUP), a bad new pair keeping the old one, and the plain
//! listener's redirects.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::process::{http, start_with, terminate};

/// A test CA that signs server certificates.
pub struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub der: CertificateDer<'static>,
    pub pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "device-registry test CA");
        let cert = params.self_signed(&key).unwrap();
        Self {
            der: cert.der().clone(),
            pem: cert.pem(),
            params,
            key,
        }
    }

    /// A certificate for `names` and its key, as PEM.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        roots
    }
}

/// One TLS connection that can carry several HTTP/1.1 requests.
pub struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
}

/// Connects to `127.0.0.1:port` as `name`, trusting `roots`, offering `alpn`, with only
/// `versions` of TLS; completes the handshake.
pub fn connect(
    port: u16,
    name: &str,
    roots: RootCertStore,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<TlsClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connection = ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let socket = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut stream = StreamOwned::new(connection, socket);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(TlsClient { stream })
}

impl TlsClient {
    /// The served certificate (the chain's first).
    pub fn certificate(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().unwrap()[0].to_vec()
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.conn.alpn_protocol().map(<[u8]>::to_vec)
    }

    pub fn version(&self) -> rustls::ProtocolVersion {
        self.stream.conn.protocol_version().unwrap()
    }

    /// `GET path` on this connection, kept alive: (status, body).
    pub fn get(&mut self, path: &str, key: Option<&str>) -> (u16, String) {
        let key = key.map_or(String::new(), |key| format!("authorization: {key}\r\n"));
        write!(
            self.stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{key}\r\n"
        )
        .unwrap();
        self.stream.flush().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];

/// Writes a certificate pair where the configuration points.
fn write_pair(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// Waits until a new connection is served `der`.
fn wait_for_certificate(port: u16, ca: &TestCa, der: &[u8], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = connect(port, "localhost", ca.roots(), &[], BOTH)
            .unwrap()
            .certificate();
        if served == der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still the old certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn certificate_files_are_served_and_swapped_under_live_connections() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let first = ca.issue(&["localhost"]);
    write_pair(files.path(), &first);
    let config = files.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nredirect_http = \"127.0.0.1:0\"\n[server.tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
            files.path().display()
        ),
    )
    .unwrap();
    let mut server = start_with(
        dir.path(),
        Some(crate::common::ADMIN),
        &["--config", config.to_str().unwrap()],
    );

    // TLS 1.3 and 1.2, HTTP/2 offered over ALPN, the first certificate.
    let live = connect(
        server.port,
        "localhost",
        ca.roots(),
        &[b"h2", b"http/1.1"],
        &[&rustls::version::TLS13],
    )
    .unwrap();
    assert_eq!(live.alpn().as_deref(), Some(&b"h2"[..]));
    assert_eq!(live.certificate(), der_of(&first.0));
    let mut live = connect(
        server.port,
        "localhost",
        ca.roots(),
        &[b"http/1.1"],
        &[&rustls::version::TLS12],
    )
    .unwrap();
    assert_eq!(live.version(), rustls::ProtocolVersion::TLSv1_2);
    assert_eq!(
        live.get("/health", None),
        (200, r#"{"status":"ok"}"#.to_owned())
    );

    // New files on disk: new connections get them; the live one goes on.
    let second = ca.issue(&["localhost"]);
    write_pair(files.path(), &second);
    wait_for_certificate(
        server.port,
        &ca,
        &der_of(&second.0),
        "after the files changed",
    );
    assert_eq!(live.get("/health", None).0, 200);

    // SIGHUP reads them at once, even when nothing on disk looks changed (same time, same size).
    let third = loop {
        let pair = ca.issue(&["localhost"]);
        if (pair.0.len(), pair.1.len()) == (second.0.len(), second.1.len()) {
            break pair;
        }
    };
    let stamps: Vec<_> = ["cert.pem", "key.pem"]
        .iter()
        .map(|name| {
            std::fs::metadata(files.path().join(name))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    write_pair(files.path(), &third);
    for (name, stamp) in ["cert.pem", "key.pem"].iter().zip(stamps) {
        let file = std::fs::File::options()
            .write(true)
            .open(files.path().join(name))
            .unwrap();
        file.set_modified(stamp).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        connect(server.port, "localhost", ca.roots(), &[], BOTH)
            .unwrap()
            .certificate(),
        der_of(&second.0)
    );
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for_certificate(server.port, &ca, &der_of(&third.0), "after SIGHUP");
    assert_eq!(live.get("/health", None).0, 200);

    // A bad new pair keeps the certificate in use, and /metrics says why.
    std::fs::write(files.path().join("cert.pem"), "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        connect(server.port, "localhost", ca.roots(), &[], BOTH)
            .unwrap()
            .certificate(),
        der_of(&third.0)
    );
    let (status, metrics) = live.get("/metrics", Some(crate::common::ADMIN));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("device_registry_tls_renewal_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("the certificate file holds no certificate"),
        "{metrics}"
    );
    assert!(
        metrics.contains("device_registry_tls_certificate_days_left "),
        "{metrics}"
    );

    // The plain listener: browsers go to HTTPS with a 308; plugins are served as they are.
    let plain = server.second_port();
    let answer = raw(
        plain,
        "GET /device?app_id=a HTTP/1.1\r\nHost: registry.example:80\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains(&format!(
            "location: https://registry.example:{}/device?app_id=a\r\n",
            server.port
        )),
        "{answer}"
    );
    let (status, body) = http(plain, "POST", "/stats", None, Some("{}")).unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("missing_app_id"), "{body}");
    assert_eq!(terminate(&mut server).code(), Some(0));
}

/// Sends `request` as is and reads the answer to its end.
fn raw(port: u16, request: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_server_with_bad_certificate_files_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[server.tls]\ncert = \"missing.pem\"\nkey = \"missing-key.pem\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(crate::process::BINARY)
        .args(["--bind", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TLS: cannot read missing.pem"), "{stderr}");
}
