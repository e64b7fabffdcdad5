//! The HTTPS settings: certificate files (`[server.tls]`) and ACME (`[server.acme]`).

use std::path::PathBuf;

use serde::Deserialize;

use super::Duration;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsConfig {
    pub fn is_set(&self) -> bool {
        !self.cert.as_os_str().is_empty() || !self.key.as_os_str().is_empty()
    }
}

/// Where the server listens with ACME on and `bind` not set.
pub const PUBLIC_HTTPS: &str = "0.0.0.0:443";

/// Let's Encrypt's production directory; its staging one is
/// `https://acme-staging-v02.api.letsencrypt.org/directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    /// Answered on the HTTPS listener itself: no second port.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// Answered on `redirect_http`, which must then be port 80 as the CA sees it.
    #[serde(rename = "http-01")]
    Http01,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The names the certificate covers; empty: no ACME.
    pub domains: Vec<String>,
    /// An e-mail address the CA may write to about the certificates.
    pub contact: String,
    pub directory: String,
    pub challenge: AcmeChallenge,
    /// A PEM root to trust for the directory's own HTTPS (a private or test CA); empty: the
    /// public roots.
    pub directory_root: PathBuf,
    /// Renew when the certificate has less than this left.
    pub renew_before: Duration,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            domains: Vec::new(),
            contact: String::new(),
            directory: LETS_ENCRYPT.into(),
            challenge: AcmeChallenge::TlsAlpn01,
            directory_root: PathBuf::new(),
            renew_before: Duration::from_secs(30 * 86_400),
        }
    }
}
