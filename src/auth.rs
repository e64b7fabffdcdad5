//! API keys: how a request proves who it is, and what a key may do.
//!
//! Keys are stored only as SHA-256 hashes; a presented key is hashed and looked up, so the stored
//! secret is never compared byte by byte. The bootstrap admin key of the configuration lives only
//! in memory (as its hash): changing or removing it in the configuration takes effect at restart.

use actix_web::http::header::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Code};
use crate::model::{Actor, ApiKey, Mode};
use crate::state::AppState;
use crate::store::{NewApiKey, Store, StoreResult};
use crate::timefmt::Micros;

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new random key: `dr_` and 40 hex digits (160 bits).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut secret = String::with_capacity(43);
    secret.push_str("dr_");
    for byte in bytes {
        secret.push_str(&format!("{byte:02x}"));
    }
    secret
}

/// Who is calling: the key that authenticated the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` for the configured admin key.
    pub key_id: Option<u64>,
    pub mode: Mode,
    /// Empty: every app.
    pub limited_to_apps: Vec<String>,
    pub expires_at: Option<Micros>,
}

impl Caller {
    pub fn require(&self, mode: Mode) -> Result<(), ApiError> {
        if self.mode >= mode {
            Ok(())
        } else {
            Err(ApiError::new(Code::InsufficientPermissions)
                .info("required_mode", format!("{mode:?}").to_lowercase()))
        }
    }

    pub fn can_access(&self, app_id: &str) -> bool {
        self.limited_to_apps.is_empty() || self.limited_to_apps.iter().any(|a| a == app_id)
    }

    /// 403 `cannot_access_app`, whether or not the app exists (no enumeration).
    pub fn require_app(&self, app_id: &str) -> Result<(), ApiError> {
        if self.can_access(app_id) {
            Ok(())
        } else {
            Err(ApiError::new(Code::CannotAccessApp).info("app_id", app_id))
        }
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> Actor {
        self.key_id.map_or(Actor::Admin, Actor::Key)
    }

    /// Whether a key is within what this caller may see and manage.
    pub fn covers(&self, key: &ApiKey) -> bool {
        self.limited_to_apps.is_empty()
            || (!key.limited_to_apps.is_empty()
                && key.limited_to_apps.iter().all(|app| self.can_access(app)))
    }
}

/// The presented key: `authorization` (raw, or after `Bearer `), else `capgkey`.
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers
        .get("authorization")
        .or_else(|| headers.get("capgkey"))
    else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::new(Code::InvalidApiKey))?
        .trim();
    let text = match text.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        None if text.eq_ignore_ascii_case("bearer") => "",
        _ => text,
    };
    Ok((!text.is_empty()).then_some(text))
}

pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<Caller, ApiError> {
    let secret = presented_key(headers)?.ok_or_else(|| ApiError::new(Code::NoKeyProvided))?;
    let hash = hash_secret(secret);
    let is_admin = state
        .admin_key_hash
        .is_some_and(|admin| bool::from(admin.ct_eq(&hash)));
    if is_admin {
        return Ok(Caller {
            key_id: None,
            mode: Mode::All,
            limited_to_apps: Vec::new(),
            expires_at: None,
        });
    }
    let key = crate::store::read(&state.store, move |store| store.api_key_by_hash(&hash))
        .await?
        .ok_or_else(|| ApiError::new(Code::InvalidApiKey))?;
    if key.expires_at.is_some_and(|at| at <= state.clock.now()) {
        return Err(ApiError::new(Code::InvalidApiKey).message("API key has expired"));
    }
    Ok(Caller {
        key_id: Some(key.id),
        mode: key.mode,
        limited_to_apps: key.limited_to_apps,
        expires_at: key.expires_at,
    })
}

/// Stores a new key and returns it with its secret, which is not kept.
pub fn create_key(
    store: &dyn Store,
    name: &str,
    mode: Mode,
    limited_to_apps: Vec<String>,
    expires_at: Option<Micros>,
    now: Micros,
) -> StoreResult<(ApiKey, String)> {
    let secret = generate_secret();
    let key = ApiKey {
        id: store.next_api_key_id()?,
        name: name.to_owned(),
        mode,
        limited_to_apps,
        expires_at,
        created_at: now,
    };
    store.create_api_key(&NewApiKey {
        key: key.clone(),
        secret_hash: hash_secret(&secret),
    })?;
    Ok((key, secret))
}

/// With no configured admin key and an empty key store, creates an `all` key and returns its
/// secret for the caller to print once. Of nodes starting together on one empty store, one
/// creates it (the store's check and insert are one step).
pub fn bootstrap(store: &dyn Store, admin_key: &str, now: Micros) -> StoreResult<Option<String>> {
    if !admin_key.is_empty() || !store.api_keys()?.is_empty() {
        return Ok(None);
    }
    let secret = generate_secret();
    let key = ApiKey {
        id: store.next_api_key_id()?,
        name: "admin (generated at first start)".to_owned(),
        mode: Mode::All,
        limited_to_apps: Vec::new(),
        expires_at: None,
        created_at: now,
    };
    let created = store.create_first_api_key(&NewApiKey {
        key,
        secret_hash: hash_secret(&secret),
    })?;
    store.flush()?;
    Ok(created.then_some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn keys_are_read_from_authorization_then_capgkey() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "abc")])).unwrap(),
            Some("abc")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer abc")])).unwrap(),
            Some("abc")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer  abc ")])).unwrap(),
            Some("abc")
        );
        assert_eq!(
            presented_key(&headers(&[("capgkey", "xyz")])).unwrap(),
            Some("xyz")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "abc"), ("capgkey", "xyz")])).unwrap(),
            Some("abc")
        );
        assert_eq!(presented_key(&headers(&[])).unwrap(), None);
        assert_eq!(
            presented_key(&headers(&[("authorization", "  ")])).unwrap(),
            None
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")])).unwrap(),
            None
        );
    }

    #[test]
    fn secrets_are_random_and_hashes_are_stable() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn modes_are_ordered() {
        let caller = Caller {
            key_id: Some(1),
            mode: Mode::Upload,
            limited_to_apps: vec!["a".into()],
            expires_at: None,
        };
        assert!(caller.require(Mode::Read).is_ok());
        assert!(caller.require(Mode::Upload).is_ok());
        assert_eq!(
            caller.require(Mode::Write).unwrap_err().code(),
            "insufficient_permissions"
        );
        assert!(caller.require_app("a").is_ok());
        assert_eq!(
            caller.require_app("b").unwrap_err().code(),
            "cannot_access_app"
        );
    }
}
