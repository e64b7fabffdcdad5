//! Certificates over ACME (RFC 8555) with `instant-acme`: an account whose key is kept in the
//! data directory, an order for `server.acme.domains` answered by TLS-ALPN-01 (on the HTTPS
//! listener itself, RFC 8737) or HTTP-01 (on `server.redirect_http`), the certificate and its key
//! kept beside the account. At start the kept certificate is served at once; it is renewed when
//! less than `renew_before` of it is left, retried with a doubling backoff while that fails, and
//! served until a new one is in hand.
//!
//! Files, in `<data_dir>/acme/`: `account.json` (the account's credentials, key included) and
//! `certificate.pem` (the chain, then its key: one file, so that a crash never leaves a key
//! beside another certificate), each written aside then renamed, readable by the owner only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use super::{parse_pem, unix_now, Certificates, Loaded};
use crate::background::Background;
use crate::config::{AcmeChallenge, AcmeConfig};

/// Waits between failed attempts: from the first, doubling up to the last.
const FIRST_RETRY: Duration = Duration::from_secs(60);
const LAST_RETRY: Duration = Duration::from_secs(3600);
/// A certificate in hand is looked at again at least this often.
const RECHECK: Duration = Duration::from_secs(12 * 3600);

/// HTTP-01 answers: token -> key authorization, served at
/// `/.well-known/acme-challenge/{token}` while an order is under way.
#[derive(Default)]
pub struct Http01Tokens(RwLock<HashMap<String, String>>);

impl Http01Tokens {
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn set(&self, token: String, key_authorization: String) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, key_authorization);
    }

    fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

pub struct Acme {
    config: AcmeConfig,
    dir: PathBuf,
    certificates: Arc<Certificates>,
    tokens: Arc<Http01Tokens>,
}

impl Acme {
    pub fn new(
        config: AcmeConfig,
        data_dir: &Path,
        certificates: Arc<Certificates>,
        tokens: Arc<Http01Tokens>,
    ) -> Self {
        Self {
            config,
            dir: data_dir.join("acme"),
            certificates,
            tokens,
        }
    }

    /// Serves the kept certificate, if there is one for these domains; answers whether so.
    pub fn load_kept(&self) -> bool {
        match self.kept() {
            Ok(Some(kept)) => {
                self.certificates.install(kept);
                true
            }
            Ok(None) => false,
            Err(error) => {
                log::error!("acme: the kept certificate cannot be used: {error}");
                false
            }
        }
    }

    fn kept(&self) -> Result<Option<Loaded>, String> {
        let Ok(pem) = std::fs::read(self.dir.join("certificate.pem")) else {
            return Ok(None);
        };
        let loaded = parse_pem(&pem, &pem)?;
        Ok(covers(&pem, &self.config.domains).then_some(loaded))
    }

    /// Obtains and renews for as long as the server runs.
    pub fn spawn(self) -> Background {
        Background::spawn(move |mut stopped| async move {
            let mut retry = FIRST_RETRY;
            loop {
                let wait = match self.renew_if_due().await {
                    Ok(wait) => {
                        retry = FIRST_RETRY;
                        wait
                    }
                    Err(error) => {
                        log::error!(
                            "acme: obtaining a certificate for {} failed, retrying in {}s: \
                             {error}",
                            self.config.domains.join(", "),
                            retry.as_secs()
                        );
                        self.certificates.status.failed(error);
                        let wait = retry;
                        retry = (retry * 2).min(LAST_RETRY);
                        wait
                    }
                };
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    /// Renews when due; answers how long until the next look.
    async fn renew_if_due(&self) -> Result<Duration, String> {
        let renew_before = self.config.renew_before.to_std().as_secs() as i64;
        if let Some(current) = self.certificates.current() {
            let due_in = current.not_after - renew_before - unix_now();
            if due_in > 0 {
                return Ok(RECHECK.min(Duration::from_secs(due_in as u64)));
            }
        }
        let issued = self.obtain().await;
        self.certificates.clear_challenges();
        self.tokens.clear();
        let (chain, key) = issued?;
        let loaded = parse_pem(chain.as_bytes(), key.as_bytes())?;
        let pem = format!("{chain}\n{key}");
        write_private(&self.dir.join("certificate.pem"), pem.as_bytes())?;
        log::info!(
            "acme: new certificate for {}, valid for {} days",
            self.config.domains.join(", "),
            (loaded.not_after - unix_now()) / 86_400
        );
        self.certificates.install(loaded);
        self.certificates
            .status
            .renewals
            .fetch_add(1, Ordering::Relaxed);
        Ok(RECHECK)
    }

    async fn account(&self) -> Result<Account, String> {
        let builder = || {
            if self.config.directory_root.as_os_str().is_empty() {
                Account::builder()
            } else {
                Account::builder_with_root(&self.config.directory_root)
            }
            .map_err(|error| format!("the ACME client cannot start: {error}"))
        };
        let path = self.dir.join("account.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let credentials: AccountCredentials = serde_json::from_str(&text)
                .map_err(|error| format!("{} cannot be read: {error}", path.display()))?;
            return builder()?
                .from_credentials(credentials)
                .await
                .map_err(|error| format!("the kept account cannot be used: {error}"));
        }
        let contact =
            (!self.config.contact.is_empty()).then(|| format!("mailto:{}", self.config.contact));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.config.directory.clone(),
                None,
            )
            .await
            .map_err(|error| {
                format!("creating the account at {}: {error}", self.config.directory)
            })?;
        let text = serde_json::to_string(&credentials)
            .map_err(|error| format!("the account cannot be kept: {error}"))?;
        write_private(&path, text.as_bytes())?;
        Ok(account)
    }

    /// One order, from the account to the certificate: (chain PEM, key PEM).
    async fn obtain(&self) -> Result<(String, String), String> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .config
            .domains
            .iter()
            .map(|domain| Identifier::Dns(domain.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|error| format!("placing the order: {error}"))?;
        let wanted = match self.config.challenge {
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            AcmeChallenge::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization =
                authorization.map_err(|error| format!("reading an authorization: {error}"))?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("an authorization is {other:?}")),
            }
            let mut challenge = authorization
                .challenge(wanted.clone())
                .ok_or_else(|| format!("the CA offers no {wanted:?} challenge"))?;
            let key_authorization = challenge.key_authorization();
            match self.config.challenge {
                AcmeChallenge::TlsAlpn01 => {
                    let Identifier::Dns(name) = challenge.identifier().identifier else {
                        return Err("only DNS names are supported".into());
                    };
                    let name = name.clone();
                    let certificate = challenge_certificate(&name, key_authorization.digest())?;
                    self.certificates.set_challenge(&name, certificate);
                }
                AcmeChallenge::Http01 => self.tokens.set(
                    challenge.token.clone(),
                    key_authorization.as_str().to_owned(),
                ),
            }
            challenge
                .set_ready()
                .await
                .map_err(|error| format!("answering the challenge: {error}"))?;
        }
        let status = order
            .poll_ready(&RetryPolicy::default())
            .await
            .map_err(|error| format!("waiting for validation: {error}"))?;
        if status != OrderStatus::Ready {
            let mut why = Vec::new();
            let mut authorizations = order.authorizations();
            while let Some(Ok(authorization)) = authorizations.next().await {
                for challenge in &authorization.challenges {
                    if let Some(error) = &challenge.error {
                        why.push(error.to_string());
                    }
                }
            }
            return Err(format!(
                "the order is {status:?}: {}",
                if why.is_empty() {
                    "the CA gave no reason".to_owned()
                } else {
                    why.join("; ")
                }
            ));
        }
        let key = order
            .finalize()
            .await
            .map_err(|error| format!("finalizing the order: {error}"))?;
        let chain = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .map_err(|error| format!("downloading the certificate: {error}"))?;
        Ok((chain, key))
    }
}

/// The self-signed certificate a TLS-ALPN-01 validation expects: the name, and the key
/// authorization's digest in the acmeIdentifier extension.
fn challenge_certificate(
    name: &str,
    digest: impl AsRef<[u8]>,
) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let failed = |error: rcgen::Error| format!("making the challenge certificate: {error}");
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(failed)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let certificate = params.self_signed(&key).map_err(failed)?;
    // Not through `parse_pem`: its key check parses the certificate with webpki, which refuses
    // the critical acmeIdentifier extension that this certificate exists for.
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    let signing = rustls::crypto::ring::sign::any_supported_type(&der.into())
        .map_err(|error| format!("the challenge key cannot sign: {error}"))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(
        vec![certificate.der().clone()],
        signing,
    )))
}

/// Whether the certificate names every domain (a changed `domains` orders a new one).
fn covers(chain: &[u8], domains: &[String]) -> bool {
    let Some(Ok(leaf)) = rustls_pemfile::certs(&mut &chain[..]).next() else {
        return false;
    };
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&leaf) else {
        return false;
    };
    let Ok(Some(names)) = certificate.subject_alternative_name() else {
        return false;
    };
    let names: Vec<String> = names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    domains
        .iter()
        .all(|domain| names.contains(&domain.to_ascii_lowercase()))
}

/// Written aside, readable by the owner only, then renamed over the old file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let aside = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&aside)
        .map_err(failed)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&aside, path))
        .map_err(failed)
}
