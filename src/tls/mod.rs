//! HTTPS from the binary: rustls through actix-web, TLS 1.2 and 1.3, HTTP/2 over ALPN. The
//! certificate comes from files (`files.rs`: reloaded when they change, or on SIGHUP) or from an
//! ACME CA (`acme.rs`); either way it is swapped into [`Certificates`] while connections go on.

pub mod acme;
pub mod files;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocol of TLS-ALPN-01 validations (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// A certificate ready to serve, and when it expires (Unix seconds).
#[derive(Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub not_after: i64,
}

/// Parses a PEM chain and its key into a certificate rustls can serve.
pub fn parse_pem(chain: &[u8], key: &[u8]) -> Result<Loaded, String> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &chain[..])
        .collect::<Result<_, _>>()
        .map_err(|error| format!("the certificate is not PEM: {error}"))?;
    let Some(leaf) = certs.first() else {
        return Err("the certificate file holds no certificate".into());
    };
    let not_after = x509_parser::parse_x509_certificate(leaf)
        .map_err(|error| format!("the certificate cannot be read: {error}"))?
        .1
        .validity()
        .not_after
        .timestamp();
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key[..])
        .map_err(|error| format!("the key is not PEM: {error}"))?
        .ok_or("the key file holds no private key")?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|error| format!("the key cannot sign: {error}"))?;
    let certified = CertifiedKey::new(certs, signing);
    certified
        .keys_match()
        .map_err(|error| format!("the key is not the certificate's: {error}"))?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
    })
}

/// What `/metrics` tells of the certificate.
#[derive(Default)]
pub struct TlsStatus {
    /// When the served certificate expires (Unix seconds; 0: none yet).
    pub not_after: AtomicI64,
    pub renewals: AtomicU64,
    pub renewal_failures: AtomicU64,
    /// The last failure to obtain or load a certificate, and when (Unix seconds).
    pub last_error: Mutex<Option<(i64, String)>>,
}

impl TlsStatus {
    pub fn failed(&self, error: String) {
        self.renewal_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((unix_now(), error));
    }
}

impl TlsStatus {
    /// Its lines of `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let not_after = self.not_after.load(Ordering::Relaxed);
        let days_left = if not_after == 0 {
            0.0
        } else {
            (not_after - unix_now()) as f64 / 86_400.0
        };
        let _ = writeln!(
            out,
            "# HELP device_registry_tls_certificate_expiry_seconds When the served certificate expires (Unix time; 0: none yet).\n# TYPE device_registry_tls_certificate_expiry_seconds gauge\ndevice_registry_tls_certificate_expiry_seconds {not_after}\n# HELP device_registry_tls_certificate_days_left Days until the served certificate expires.\n# TYPE device_registry_tls_certificate_days_left gauge\ndevice_registry_tls_certificate_days_left {days_left:.2}\n# HELP device_registry_tls_renewals_total Certificates obtained over ACME.\n# TYPE device_registry_tls_renewals_total counter\ndevice_registry_tls_renewals_total {}\n# HELP device_registry_tls_renewal_failures_total Failed attempts to obtain (ACME) or reload (files) a certificate.\n# TYPE device_registry_tls_renewal_failures_total counter\ndevice_registry_tls_renewal_failures_total {}",
            self.renewals.load(Ordering::Relaxed),
            self.renewal_failures.load(Ordering::Relaxed),
        );
        if let Some((at, error)) = &*self.last_error.lock().unwrap_or_else(|e| e.into_inner()) {
            let error = crate::metrics::escape(error);
            let _ = writeln!(
                out,
                "# HELP device_registry_tls_last_error_timestamp_seconds When the last attempt to obtain or reload a certificate failed, and why.\n# TYPE device_registry_tls_last_error_timestamp_seconds gauge\ndevice_registry_tls_last_error_timestamp_seconds{{error=\"{error}\"}} {at}"
            );
        }
    }
}

/// What handlers need of HTTPS: the port it is served on (for redirects), the HTTP-01 answers,
/// and the certificates' status (for `/metrics`).
#[derive(Clone)]
pub struct Https {
    pub port: u16,
    pub tokens: Arc<acme::Http01Tokens>,
    pub certificates: Arc<Certificates>,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// The certificates the HTTPS listener serves: the current one for every handshake, and, for
/// TLS-ALPN-01 validations, a challenge certificate per name while an order is under way.
#[derive(Default)]
pub struct Certificates {
    current: RwLock<Option<Loaded>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    pub status: TlsStatus,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

impl Certificates {
    /// Serves `loaded` from the next handshake on; connections already open keep theirs.
    pub fn install(&self, loaded: Loaded) {
        self.status
            .not_after
            .store(loaded.not_after, Ordering::Relaxed);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(loaded);
    }

    pub fn current(&self) -> Option<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_challenge(&self, name: &str, key: Arc<CertifiedKey>) {
        self.challenges
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_ascii_lowercase(), key);
    }

    pub fn clear_challenges(&self) {
        self.challenges
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A validation offers `acme-tls/1` and nothing else (RFC 8737 section 3).
        let validation = hello.alpn().is_some_and(|protocols| {
            let offered: Vec<&[u8]> = protocols.collect();
            offered == [ACME_TLS_ALPN]
        });
        if validation {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .challenges
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .cloned();
        }
        self.current().map(|loaded| loaded.key)
    }
}

/// The rustls configuration of the HTTPS listener: TLS 1.2 and 1.3 with ring's suites, the
/// certificate from `certificates`. actix-web puts `h2` and `http/1.1` first in ALPN; ACME's
/// validation protocol is added after them when ACME is on.
pub fn server_config(
    certificates: Arc<Certificates>,
    acme: bool,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    if acme {
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_pem_pair_loads_and_bad_ones_say_why() {
        let (cert, key) = self_signed("a.example");
        let loaded = parse_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert!(loaded.not_after > unix_now());

        let (_, other_key) = self_signed("b.example");
        let mismatch = parse_pem(cert.as_bytes(), other_key.as_bytes())
            .err()
            .unwrap();
        assert!(mismatch.contains("not the certificate's"), "{mismatch}");
        let empty = parse_pem(b"", key.as_bytes()).err().unwrap();
        assert_eq!(empty, "the certificate file holds no certificate");
        let no_key = parse_pem(cert.as_bytes(), b"").err().unwrap();
        assert_eq!(no_key, "the key file holds no private key");
    }
}
