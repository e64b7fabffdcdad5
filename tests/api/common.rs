//! The harness: the production app (`create_app`) over a temporary store and a manual clock.
//! Every call returns `(StatusCode, serde_json::Value)`; each test uses its own app ids.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use device_registry::clock::{Clock, ManualClock};
use device_registry::config::Config;
use device_registry::store::sled::{SledOptions, SledStore};
use device_registry::store::{Store, StoreHandle};
use device_registry::{create_app, AppState};

pub const ADMIN: &str = "test-admin-key";
/// 2024-01-01T00:00:00Z.
pub const START: u64 = 1_704_067_200_000_000;
pub const SECOND: u64 = 1_000_000;
pub const HOUR: u64 = 3_600 * SECOND;

type Response = (StatusCode, actix_web::http::header::HeaderMap, Value);
type Call = Box<dyn Fn(actix_http::Request) -> Pin<Box<dyn Future<Output = Response>>>>;
type TextResponse = (StatusCode, actix_web::http::header::HeaderMap, String);
type TextCall = Box<dyn Fn(actix_http::Request) -> Pin<Box<dyn Future<Output = TextResponse>>>>;

pub struct TestServer {
    call: Call,
    call_text: TextCall,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// Rollout draws from a seeded generator: the same decisions on every run.
pub struct SeededDice(std::sync::Mutex<rand::rngs::StdRng>);

impl SeededDice {
    pub fn new(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(
            seed,
        )))
    }
}

impl device_registry::rollout::Dice for SeededDice {
    fn roll_bps(&self) -> u16 {
        use rand::Rng;
        self.0
            .lock()
            .unwrap()
            .gen_range(0..device_registry::rollout::MAX_BPS)
    }
}

pub fn config() -> Config {
    let mut config = Config::default();
    config.auth.admin_key = ADMIN.to_owned();
    // The tests' disk may be short of the default floor; the floor has a test of its own.
    config.storage.min_free = device_registry::config::ByteSize(0);
    config
}

pub fn open_store(path: &Path) -> Arc<dyn Store> {
    open_store_with_floor(path, 0)
}

/// A store that refuses new devices below `min_free_bytes` of free disk.
pub fn open_store_with_floor(path: &Path, min_free_bytes: u64) -> Arc<dyn Store> {
    let options = SledOptions {
        cache_bytes: 16 * 1024 * 1024,
        flush_every_ms: None,
        durable: true,
        min_free_bytes,
        accept_lost_writes: false,
    };
    SledStore::open(path, &options).expect("open store")
}

/// A store on the engine the suite runs on (`DEVICE_REGISTRY_TEST_ENGINE`): sled in `dir`, or a
/// fresh schema of the throwaway PostgreSQL cluster.
pub fn engine_store(dir: &Path, config: &Config) -> Arc<dyn Store> {
    if !crate::pg::wanted() {
        return open_store_with_floor(dir, config.storage.min_free.0);
    }
    let cluster = crate::pg::cluster()
        .expect("DEVICE_REGISTRY_TEST_ENGINE=postgres needs PostgreSQL installed");
    postgres_store(&cluster.url(&cluster.fresh_schema()))
}

pub fn postgres_store(url: &str) -> Arc<dyn Store> {
    use device_registry::store::postgres::{PostgresOptions, PostgresStore};
    PostgresStore::open(&PostgresOptions {
        url: url.to_owned(),
        pool_size: 4,
    })
    .expect("open the PostgreSQL store")
}

impl TestServer {
    pub async fn new() -> Self {
        Self::with_config(config()).await
    }

    pub async fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = engine_store(dir.path(), &config);
        let mut server = Self::with_store(store, config, Arc::new(ManualClock::new(START))).await;
        server._dir = Some(dir);
        server
    }

    /// A server over an existing data directory (for restarts): always the sled engine.
    pub async fn open(path: &Path, config: Config, clock: Arc<ManualClock>) -> Self {
        let store = open_store_with_floor(path, config.storage.min_free.0);
        Self::with_store(store, config, clock).await
    }

    /// A server over a store already open.
    pub async fn with_store(
        store: Arc<dyn Store>,
        config: Config,
        clock: Arc<ManualClock>,
    ) -> Self {
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let mut state = AppState::new(
            Arc::new(StoreHandle::fixed(store.clone())),
            dyn_clock,
            &config,
        );
        state.dice = Arc::new(SeededDice::new(42));
        let service = Rc::new(test::init_service(create_app(state)).await);
        let text_service = service.clone();
        let call_text: TextCall = Box::new(move |request| {
            let service = text_service.clone();
            Box::pin(async move {
                let response = test::call_service(&*service, request).await;
                let status = response.status();
                let headers = response.headers().clone();
                let body = test::read_body(response).await;
                (status, headers, String::from_utf8_lossy(&body).into_owned())
            })
        });
        let call: Call = Box::new(move |request| {
            let service = service.clone();
            Box::pin(async move {
                let response = test::call_service(&*service, request).await;
                let status = response.status();
                let headers = response.headers().clone();
                let body = test::read_body(response).await;
                let value = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap_or_else(|_| {
                        panic!("not JSON ({status}): {}", String::from_utf8_lossy(&body))
                    })
                };
                (status, headers, value)
            })
        });
        Self {
            call,
            call_text,
            clock,
            store,
            _dir: None,
        }
    }

    pub async fn send(&self, request: TestRequest) -> Response {
        (self.call)(request.to_request()).await
    }

    /// A call whose answer is not JSON.
    pub async fn send_text(&self, request: actix_http::Request) -> (StatusCode, String) {
        let (status, _, body) = (self.call_text)(request).await;
        (status, body)
    }

    /// A call whose answer is not JSON, with its headers.
    pub async fn send_text_with_headers(&self, request: actix_http::Request) -> TextResponse {
        (self.call_text)(request).await
    }

    pub async fn send_raw(&self, request: actix_http::Request) -> (StatusCode, Value) {
        let (status, _, body) = (self.call)(request).await;
        (status, body)
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = TestRequest::default().method(method).uri(uri);
        if let Some(key) = key {
            request = request.insert_header(("authorization", key));
        }
        if let Some(body) = body {
            request = request.set_json(body);
        }
        let (status, _, value) = self.send(request).await;
        (status, value)
    }

    pub async fn get(&self, uri: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(key), None).await
    }

    pub async fn post(&self, uri: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(key), Some(body)).await
    }

    pub async fn delete(&self, uri: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, Some(key), body).await
    }

    /// An unauthenticated plugin call.
    pub async fn plugin(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, None, Some(body)).await
    }

    pub async fn create_app(&self, app_id: &str) {
        let (status, body) = self
            .post("/app", ADMIN, json!({"app_id": app_id, "name": app_id}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    pub async fn create_channel(&self, app_id: &str, channel: &str, fields: Value) {
        let mut body = json!({"app_id": app_id, "channel": channel});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (status, answer) = self.post("/channel", ADMIN, body).await;
        assert!(status.is_success(), "{answer}");
    }

    pub async fn create_bundle(&self, app_id: &str, version: &str) -> u64 {
        let (status, body) = self
            .post(
                "/bundle",
                ADMIN,
                json!({"app_id": app_id, "version": version,
                       "external_url": format!("https://cdn.example.com/{version}.zip"),
                       "checksum": format!("sum-{version}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["bundle"]["id"].as_u64().unwrap()
    }

    /// A check-in through `/updates`: the plugin's body with `fields` on top.
    pub async fn check_in(&self, app_id: &str, device_id: &str, fields: Value) -> Value {
        let mut body = device_body(app_id, device_id);
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let (status, answer) = self.plugin("/updates", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// Reports a device through `/stats`, as the plugin would.
    pub async fn report(&self, app_id: &str, device_id: &str) {
        self.report_with(app_id, device_id, json!({})).await;
    }

    pub async fn report_with(&self, app_id: &str, device_id: &str, fields: Value) {
        let mut body = device_body(app_id, device_id);
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        body["action"] = json!("get");
        let (status, answer) = self.plugin("/stats", body).await;
        assert_eq!(
            (status, &answer),
            (StatusCode::OK, &json!({"status": "ok"}))
        );
    }

    /// Creates a key and returns its secret.
    pub async fn key(&self, mode: &str, apps: &[&str]) -> String {
        let mut body = json!({"name": format!("{mode} key"), "mode": mode});
        if !apps.is_empty() {
            body["limited_to_apps"] = json!(apps);
        }
        let (status, answer) = self.post("/apikey", ADMIN, body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["key"].as_str().unwrap().to_owned()
    }
}

/// The body the plugin sends for a device.
pub fn device_body(app_id: &str, device_id: &str) -> Value {
    json!({
        "app_id": app_id,
        "device_id": device_id,
        "platform": "ios",
        "custom_id": "test-device-1",
        "version_name": "1.0.0",
        "version_build": "1",
        "version_code": "1",
        "version_os": "17.0",
        "plugin_version": "5.0.0",
        "is_emulator": false,
        "is_prod": true,
    })
}

/// The contract's error body.
pub fn error(code: &str, message: &str, more_info: Value) -> Value {
    json!({"error": code, "message": message, "moreInfo": more_info, "status": "KO"})
}

/// A device record as an iOS 8.x plugin on 1.0.0 leaves it, seen at `updated_at`, for tests that
/// seed a store directly.
pub fn seeded_device(
    app_id: &str,
    device_id: String,
    updated_at: u64,
) -> device_registry::model::Device {
    use device_registry::model::{Device, DeviceReport, Platform};
    Device {
        app_id: app_id.into(),
        device_id,
        updated_at,
        report: DeviceReport {
            custom_id: String::new(),
            version_name: Some("1.0.0".into()),
            version_build: "1.0.0".into(),
            os_version: "17".into(),
            plugin_version: "8.0.0".into(),
            platform: Platform::Ios,
            is_prod: true,
            is_emulator: false,
            default_channel: None,
            install_source: None,
            key_id: None,
        },
        rollout: None,
    }
}
