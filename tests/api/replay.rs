//! Replays what real capacitor-updater releases send (`tests/plugin_corpus/corpus.json`, read
//! from the plugin's source at each tag; see its README), byte for byte with their headers, and
//! checks every answer the plugin reads and every device it records, as Capgo's server would
//! answer and record them.

use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::common::*;

const CORPUS: &str = include_str!("../plugin_corpus/corpus.json");
const APP: &str = "com.example.app";

/// Releases whose self-set channel the server keeps (5.x < 5.34, 6.x < 6.34, 7.x < 7.34), as
/// their bodies name them; every other release keeps its channel and sends it as defaultChannel.
const SERVER_KEEPS_CHANNEL: &[&str] = &["5.9.5", "6.27.11", "7.33.4"];

#[derive(Clone)]
struct Request {
    release: String,
    name: String,
    platform: String,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    query: Option<Value>,
    body: Option<Value>,
}

impl Request {
    fn label(&self) -> String {
        format!("{} {} ({})", self.release, self.name, self.platform)
    }

    /// The body's field, as a string.
    fn field(&self, name: &str) -> &str {
        let body = self.body.as_ref().expect("a body");
        let event = body.as_array().and_then(|a| a.last()).unwrap_or(body);
        event[name].as_str().unwrap_or_default()
    }

    fn plugin_version(&self) -> &str {
        let from_query = self
            .query
            .as_ref()
            .and_then(|q| q["plugin_version"].as_str());
        from_query.unwrap_or_else(|| self.field("plugin_version"))
    }

    fn server_keeps_channel(&self) -> bool {
        SERVER_KEEPS_CHANNEL.contains(&self.plugin_version())
    }
}

fn corpus() -> Vec<Request> {
    let corpus: Value = serde_json::from_str(CORPUS).expect("corpus.json is JSON");
    let mut requests = Vec::new();
    for release in corpus["releases"].as_array().unwrap() {
        for request in release["requests"].as_array().unwrap() {
            let headers = request["headers"]
                .as_object()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            requests.push(Request {
                release: release["release"].as_str().unwrap().to_owned(),
                name: request["name"].as_str().unwrap().to_owned(),
                platform: request["platform"].as_str().unwrap_or("").to_owned(),
                method: Method::from_bytes(request["method"].as_str().unwrap().as_bytes()).unwrap(),
                path: request["path"].as_str().unwrap().to_owned(),
                headers,
                query: Some(request["query"].clone()).filter(|q| !q.is_null()),
                body: Some(request["body"].clone()).filter(|b| !b.is_null()),
            });
        }
    }
    requests
}

/// The corpus's app: bundles 1.0.0 (id 1), 1.0.1 (id 2) and 1.0.2 (id 3); the public channel
/// `production` on 1.0.1, `beta` (devices may choose it) on 1.0.2, `internal` private.
async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.create_app(APP).await;
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        server.create_bundle(APP, version).await;
    }
    server
        .create_channel(
            APP,
            "production",
            json!({"public": true, "version": "1.0.1"}),
        )
        .await;
    server
        .create_channel(
            APP,
            "beta",
            json!({"allow_device_self_set": true, "version": "1.0.2"}),
        )
        .await;
    server.create_channel(APP, "internal", json!({})).await;
    server
}

/// Sends the request as the plugin does: its method, path, query, headers and body bytes.
async fn replay(server: &TestServer, request: &Request) -> (StatusCode, Value) {
    let mut uri = request.path.clone();
    if let Some(query) = &request.query {
        let pairs: Vec<(String, String)> = query
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        uri = format!("{uri}?{}", serde_urlencoded::to_string(pairs).unwrap());
    }
    let mut test_request = TestRequest::default()
        .method(request.method.clone())
        .uri(&uri);
    for (name, value) in &request.headers {
        test_request = test_request.insert_header((name.as_str(), value.as_str()));
    }
    if let Some(body) = &request.body {
        test_request = test_request.set_payload(serde_json::to_vec(body).unwrap());
    }
    let (status, _, body) = server.send(test_request).await;
    (status, body)
}

fn bundle_id(version: &str) -> Value {
    match version {
        "1.0.0" => json!(1),
        "1.0.1" => json!(2),
        "1.0.2" => json!(3),
        _ => Value::Null,
    }
}

/// The Device object the registry must show after `event` (one plugin body) reported the
/// device running `version_name`.
fn expected_device(event: &Value, version_name: &str) -> Value {
    let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
    let mut device = json!({
        "updated_at": "2024-01-01T00:00:00Z",
        "device_id": text("device_id").to_lowercase(),
        "custom_id": text("custom_id"),
        "version": bundle_id(version_name),
        "version_name": version_name,
        "app_id": APP,
        "platform": text("platform"),
        "plugin_version": text("plugin_version"),
        "os_version": text("version_os"),
        "version_build": text("version_build"),
        "is_prod": event["is_prod"],
        "is_emulator": event["is_emulator"],
    });
    // install_source is kept lower-case; key_id (a base64 prefix) as sent.
    if !text("install_source").is_empty() {
        device["install_source"] = json!(text("install_source").to_lowercase());
    }
    if !text("key_id").is_empty() {
        device["key_id"] = json!(text("key_id"));
    }
    device
}

/// What the device reports running: `builtin` is its native version.
fn running(event: &Value) -> String {
    match event["version_name"].as_str().unwrap_or_default() {
        "builtin" => event["version_build"].as_str().unwrap().to_owned(),
        name => name.to_owned(),
    }
}

async fn recorded(server: &TestServer, device_id: &str) -> (StatusCode, Value) {
    server
        .get(
            &format!(
                "/device/?app_id={APP}&device_id={}",
                device_id.to_lowercase()
            ),
            ADMIN,
        )
        .await
}

fn offer(version: &str) -> Value {
    json!({"version": version, "url": format!("https://cdn.example.com/{version}.zip"),
           "checksum": format!("sum-{version}"), "session_key": ""})
}

/// Checks one request, on a server of its own.
async fn check(request: &Request) {
    let label = request.label();
    let server = server().await;
    let (status, answer) = replay(&server, request).await;
    let device_id = if request.body.is_some() {
        request.field("device_id").to_owned()
    } else {
        String::new()
    };
    match request.name.as_str() {
        "updates" | "updates_after_setChannel" => {
            let body = request.body.as_ref().unwrap();
            // The configured (empty) default channel is the public channel's; a channel the
            // plugin set for itself is sent as its default channel.
            let version = if body["defaultChannel"] == "beta" {
                "1.0.2"
            } else {
                "1.0.1"
            };
            assert_eq!(
                (status, &answer),
                (StatusCode::OK, &offer(version)),
                "{label}"
            );
            // Recorded, with the offered bundle as its version, as Capgo records it.
            let (status, device) = recorded(&server, &device_id).await;
            assert_eq!(status, StatusCode::OK, "{label}");
            assert_eq!(device, expected_device(body, version), "{label}");
        }
        name if name.starts_with("stats") => {
            let body = request.body.as_ref().unwrap();
            let expected = match body.as_array() {
                Some(events) => json!({"status": "ok", "results": (0..events.len())
                    .map(|index| json!({"status": "ok", "index": index}))
                    .collect::<Vec<_>>()}),
                None => json!({"status": "ok"}),
            };
            assert_eq!((status, &answer), (StatusCode::OK, &expected), "{label}");
            let last = body.as_array().and_then(|a| a.last()).unwrap_or(body);
            let (status, device) = recorded(&server, &device_id).await;
            assert_eq!(status, StatusCode::OK, "{label}");
            assert_eq!(device, expected_device(last, &running(last)), "{label}");
        }
        "channel_self_set" => {
            let body = request.body.as_ref().unwrap();
            let (_, device) = recorded(&server, &device_id).await;
            let mut expected_record = expected_device(body, &running(body));
            if request.server_keeps_channel() {
                // Kept on the server as the device's channel override...
                assert_eq!(
                    (status, &answer),
                    (StatusCode::OK, &json!({"status": "ok"})),
                    "{label}"
                );
                expected_record["channel"] = json!("beta");
                assert_eq!(device, expected_record, "{label}");
                // ...which /updates follows while the plugin sends its empty default channel.
                let mut update = body.clone();
                update.as_object_mut().unwrap().remove("channel");
                let (_, answer) = server.plugin("/updates", update).await;
                assert_eq!(answer, offer("1.0.2"), "{label}");
            } else {
                assert_eq!(
                    (status, &answer),
                    (StatusCode::OK, &json!({"status": "ok", "allowSet": true})),
                    "{label}"
                );
                assert_eq!(device, expected_record, "{label}");
            }
            // A channel devices may not choose: the plugin's channelPrivate event keys on it.
            let mut private = body.clone();
            private["channel"] = json!("internal");
            let (_, answer) = server.plugin("/channel_self", private).await;
            assert_eq!(answer["error"], "channel_self_set_not_allowed", "{label}");
        }
        "channel_self_get" => {
            assert_eq!(
                (status, &answer),
                (
                    StatusCode::OK,
                    &json!({"channel": "production", "status": "default"})
                ),
                "{label}"
            );
        }
        "channel_self_list" => {
            assert_eq!(status, StatusCode::OK, "{label}");
            // A top-level array; ids are numbers (plugins from 8.47.7 require it).
            assert_eq!(
                answer,
                json!([
                    {"id": 2, "name": "beta", "public": false, "allow_self_set": true},
                    {"id": 1, "name": "production", "public": true, "allow_self_set": false},
                ]),
                "{label}"
            );
        }
        "channel_self_unset" => {
            let Some(body) = &request.body else {
                // 5.9.5 on Android: a DELETE without a body names no device.
                assert_eq!(
                    (status, answer["error"].as_str()),
                    (StatusCode::BAD_REQUEST, Some("missing_app_id")),
                    "{label}"
                );
                return;
            };
            assert!(
                request.server_keeps_channel(),
                "{label}: only older plugins unset"
            );
            // Nothing to unset yet; then set, unset, and the override is gone.
            assert_eq!(answer["error"], "cannot_override", "{label}");
            let mut set = body.clone();
            set["channel"] = json!("beta");
            let (_, answer) = server.plugin("/channel_self", set).await;
            assert_eq!(answer, json!({"status": "ok"}), "{label}");
            assert_eq!(recorded(&server, &device_id).await.1["channel"], "beta");
            let (status, answer) = replay(&server, request).await;
            assert_eq!(
                (status, answer),
                (StatusCode::OK, json!({"status": "ok"})),
                "{label}"
            );
            let (_, device) = recorded(&server, &device_id).await;
            assert_eq!(device, expected_device(body, &running(body)), "{label}");
        }
        "manifest_size" => {
            let body = request.body.as_ref().unwrap();
            let file = &body["manifest"][0];
            assert_eq!(
                (status, answer),
                (
                    StatusCode::OK,
                    json!({"totalSize": 0, "knownFiles": 0, "unknownFiles": 1, "files": [{
                        "file_name": file["file_name"], "file_hash": file["file_hash"],
                        "download_url": file["download_url"], "error": "size_unknown"}]})
                ),
                "{label}"
            );
        }
        other => panic!("{label}: no expectation for a {other} request"),
    }
}

#[actix_web::test]
async fn every_release_gets_capgo_s_answers_and_is_recorded() {
    let requests = corpus();
    let releases: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r.release.as_str()).collect();
    // Every major still in use, and both sides of the 7.34 channel change.
    for wanted in [
        "8.51.14", "7.50.2", "7.34.0", "7.33.4", "6.50.2", "6.27.11", "5.50.2", "5.9.5",
    ] {
        assert!(
            releases.iter().any(|r| r.starts_with(wanted)),
            "the corpus lacks {wanted}"
        );
    }
    for request in &requests {
        check(request).await;
    }
}

#[actix_web::test]
async fn a_current_plugin_s_channel_round_trip() {
    // 8.51.14: setChannel, then the plugin sends the channel as its default, and getChannel
    // (whose answer it keeps) names the same channel /updates serves.
    let requests = corpus();
    let of = |name: &str| {
        requests
            .iter()
            .find(|r| r.release.starts_with("8.51.14") && r.name == name && r.platform == "android")
            .unwrap_or_else(|| panic!("8.51.14 {name}"))
    };
    let server = server().await;
    let (_, answer) = replay(&server, of("channel_self_set")).await;
    assert_eq!(answer, json!({"status": "ok", "allowSet": true}));
    let (_, answer) = replay(&server, of("updates_after_setChannel")).await;
    assert_eq!(answer, offer("1.0.2"));
    let mut get = of("channel_self_get").body.clone().unwrap();
    get["defaultChannel"] = json!("beta");
    let (_, answer) = server
        .call(Method::PUT, "/channel_self", None, Some(get))
        .await;
    assert_eq!(answer, json!({"channel": "beta", "status": "default"}));
}

#[actix_web::test]
async fn every_release_reads_capgo_s_refusals() {
    for request in corpus().iter().filter(|r| r.name == "updates") {
        let label = request.label();
        let server = server().await;
        // A major release the native 1.0.0 build may not take: 8.x reads `kind` and fires its
        // majorAvailable/breakingAvailable events from this error and `version`; 5.9.5 reads
        // `message` and `major`.
        server.create_bundle(APP, "2.0.0").await;
        server
            .create_channel(APP, "production", json!({"version": "2.0.0"}))
            .await;
        let (status, answer) = replay(&server, request).await;
        assert_eq!(
            (status, answer),
            (
                StatusCode::OK,
                json!({"error": "disable_auto_update_to_major", "message": "Cannot upgrade major version",
                       "kind": "blocked", "version": "2.0.0", "old": "1.0.0", "major": true})
            ),
            "{label}"
        );
        // A default channel the device may not use: nothing about it, no fallback.
        let mut private = request.clone();
        private.body.as_mut().unwrap()["defaultChannel"] = json!("internal");
        let (status, answer) = replay(&server, &private).await;
        assert_eq!(
            (status, answer),
            (
                StatusCode::OK,
                json!({"error": "no_channel", "message": "no default channel or override", "kind": "failed"})
            ),
            "{label}"
        );
    }
}

#[actix_web::test]
async fn a_key_id_is_recorded_as_sent() {
    // 8.x sends key_id (the first 20 characters of the app's public key) when encryption is
    // configured; it is case-sensitive, and kept when a later body leaves it out.
    let requests = corpus();
    let update = requests
        .iter()
        .find(|r| r.release.starts_with("8.51.14") && r.name == "updates" && r.platform == "ios")
        .expect("8.51.14 updates (ios)");
    let server = server().await;
    let mut with_key = update.clone();
    with_key.body.as_mut().unwrap()["key_id"] = json!("MIIBCgKCAQEAx/Zq9+Ab");
    let (status, _) = replay(&server, &with_key).await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = replay(&server, update).await;
    assert_eq!(answer["error"], Value::Null, "{answer}");
    let (_, device) = recorded(&server, update.field("device_id")).await;
    let mut expected = expected_device(with_key.body.as_ref().unwrap(), "1.0.1");
    expected["key_id"] = json!("MIIBCgKCAQEAx/Zq9+Ab");
    assert_eq!(device, expected);
}
