//! What every handler shares: the store, the clock and the settings that shape answers.

use std::sync::Arc;

use crate::auth::hash_secret;
use crate::clock::Clock;
use crate::config::Config;
use crate::limits::{FailureLimiter, RateLimiter};
use crate::metrics::Metrics;
use crate::store::StoreHandle;
use crate::timefmt::Micros;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<StoreHandle>,
    pub clock: Arc<dyn Clock>,
    pub admin_key_hash: Option<[u8; 32]>,
    pub max_body: usize,
    pub body_timeout: std::time::Duration,
    pub touch_interval: Micros,
    pub auth_failures: Arc<FailureLimiter>,
    pub plugin_limit: Arc<RateLimiter>,
    pub client_ip_header: Option<String>,
    /// How many entries of `client_ip_header`, from the right, the trusted proxies wrote.
    pub trusted_proxies: usize,
    pub metrics: Arc<Metrics>,
    /// Set when the server speaks HTTPS (see [`crate::tls`]).
    pub https: Option<crate::tls::Https>,
    /// Draws for rollout decisions (seeded in tests).
    pub dice: Arc<dyn crate::rollout::Dice>,
    /// How many days version counters are kept (`retention.audit_ttl`).
    pub audit_days: u32,
}

impl AppState {
    pub fn new(store: Arc<StoreHandle>, clock: Arc<dyn Clock>, config: &Config) -> Self {
        let admin_key = &config.auth.admin_key;
        Self {
            store,
            clock,
            admin_key_hash: (!admin_key.is_empty()).then(|| hash_secret(admin_key)),
            max_body: usize::try_from(config.server.max_body.0).unwrap_or(usize::MAX),
            body_timeout: config.server.body_timeout.to_std(),
            touch_interval: config.devices.touch_interval.micros(),
            auth_failures: Arc::new(FailureLimiter::new(
                config.limits.auth_failures,
                config.limits.auth_window.micros(),
            )),
            plugin_limit: Arc::new(RateLimiter::new(config.limits.plugin_per_minute)),
            client_ip_header: Some(config.server.client_ip_header.trim().to_ascii_lowercase())
                .filter(|name| !name.is_empty()),
            trusted_proxies: config.server.trusted_proxies.max(1),
            metrics: Arc::new(Metrics::new()),
            https: None,
            dice: Arc::new(crate::rollout::SystemDice),
            audit_days: (config.retention.audit_ttl.micros() / crate::health::DAY_MICROS) as u32,
        }
    }
}
