//! Progressive rollouts on a channel, through the API and the plugin's `/updates`, with the
//! server's seeded dice: decisions kept with devices, shown in the Device object, the resolve
//! trace and the summary; pause, promote, abort; restarts and expiry.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;
use device_registry::clock::Clock;

const APP: &str = "app_rollout";

/// An app whose public channel `production` runs 1.0.1, with bundle 1.1.0 to roll out.
async fn an_app_with_a_rollout_bundle(server: &TestServer) {
    server.create_app(APP).await;
    server.create_bundle(APP, "1.0.1").await;
    server.create_bundle(APP, "1.1.0").await;
    server
        .create_channel(
            APP,
            "production",
            json!({"version": "1.0.1", "public": true}),
        )
        .await;
}

async fn set_rollout(server: &TestServer, fields: Value) -> (StatusCode, Value) {
    let mut body = json!({"app_id": APP, "channel": "production"});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    server.post("/channel", ADMIN, body).await
}

fn device(n: usize) -> String {
    format!("device-{n:04}")
}

/// Checks devices `range` in on 1.0.0; answers the version each was offered.
async fn check_in_all(server: &TestServer, range: std::ops::Range<usize>) -> Vec<String> {
    let mut offered = Vec::new();
    for n in range {
        let answer = server.check_in(APP, &device(n), json!({})).await;
        offered.push(answer["version"].as_str().unwrap_or_default().to_owned());
    }
    offered
}

async fn device_object(server: &TestServer, n: usize) -> Value {
    let (status, body) = server
        .get(
            &format!("/device?app_id={APP}&device_id={}", device(n)),
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The `rollout` step of a device's resolve trace.
async fn rollout_step(server: &TestServer, n: usize) -> Value {
    let (status, trace) = server
        .get(
            &format!("/device/resolve?app_id={APP}&device_id={}", device(n)),
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    trace["precedence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"] == "rollout")
        .cloned()
        .unwrap()
}

async fn summary_rollouts(server: &TestServer) -> Value {
    let (status, body) = server
        .get(&format!("/device/summary?app_id={APP}"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["rollouts"].clone()
}

#[actix_web::test]
async fn a_rollout_selects_its_share_sticks_pauses_and_is_promoted() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    let (status, body) = set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 5000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let channel = &body["channel"];
    assert_eq!(
        (
            &channel["version"],
            &channel["rollout_id"],
            &channel["rollout_version"],
            &channel["rollout_percentage_bps"],
            &channel["rollout_paused"]
        ),
        (
            &json!("1.0.1"),
            &json!(1),
            &json!("1.1.0"),
            &json!(5000),
            &json!(false)
        )
    );

    // 200 devices at 50%: about half get the rollout bundle, the others the channel's.
    let offered = check_in_all(&server, 0..200).await;
    let selected = offered.iter().filter(|v| *v == "1.1.0").count();
    assert!((70..=130).contains(&selected), "{selected} of 200 at 50%");
    assert_eq!(
        selected + offered.iter().filter(|v| *v == "1.0.1").count(),
        200
    );

    // The decision is kept with the device and shown.
    let first_selected = offered.iter().position(|v| v == "1.1.0").unwrap();
    let shown = device_object(&server, first_selected).await;
    assert_eq!(
        shown["rollout"],
        json!({"channel": "production", "channel_id": 1, "rollout_id": 1, "version": "1.1.0",
               "selected": true, "percentage_bps": 5000})
    );
    assert_eq!(shown["version_name"], "1.1.0");
    let first_left = offered.iter().position(|v| v == "1.0.1").unwrap();
    assert_eq!(
        device_object(&server, first_left).await["rollout"]["selected"],
        false
    );
    assert_eq!(
        summary_rollouts(&server).await,
        json!([{"channel": "production", "rollout_id": 1, "version": "1.1.0",
                "percentage_bps": 5000, "paused": false, "selected": selected}])
    );

    // Why: the resolve trace names the rollout step.
    let rollout_step = rollout_step(&server, first_left).await;
    assert_eq!(
        rollout_step,
        json!({"step": "rollout", "applied": false,
               "detail": "rollout 1 of bundle 1.1.0 at 5000 bps: not selected (not_widened)"})
    );

    // Sticky: checking in again changes no decision.
    let before: Vec<Value> = {
        let mut all = Vec::new();
        for n in 0..200 {
            all.push(device_object(&server, n).await["rollout"].clone());
        }
        all
    };
    check_in_all(&server, 0..200).await;
    for (n, kept) in before.iter().enumerate() {
        assert_eq!(
            &device_object(&server, n).await["rollout"],
            kept,
            "device {n}"
        );
    }

    // Paused: new devices are not selected, and nothing is decided for them.
    let (status, _) = set_rollout(&server, json!({"rollout_paused": true})).await;
    assert_eq!(status, StatusCode::OK);
    let offered = check_in_all(&server, 200..260).await;
    assert!(offered.iter().all(|v| v == "1.0.1"), "{offered:?}");
    assert_eq!(device_object(&server, 200).await.get("rollout"), None);

    // A bundle a rollout uses cannot be deleted.
    let (status, body) = server
        .delete(
            "/bundle",
            ADMIN,
            Some(json!({"app_id": APP, "version": "1.1.0"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Promote: the rollout bundle becomes the channel's; decisions go at the next check-in.
    let promote = json!({"app_id": APP, "channel": "production", "action": "promote"});
    let (status, body) = server
        .post("/channel/rollout", ADMIN, promote.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["channel"]["version"],
            &body["channel"]["rollout_version"]
        ),
        (&json!("1.1.0"), &Value::Null)
    );
    assert_eq!(summary_rollouts(&server).await, json!([]));
    check_in_all(&server, 0..1).await;
    assert_eq!(device_object(&server, 0).await.get("rollout"), None);
    let (status, body) = server.post("/channel/rollout", ADMIN, promote).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            error(
                "no_rollout",
                "The channel has no rollout: set rollout_version first",
                json!({})
            )
        )
    );
}

#[actix_web::test]
async fn rollout_changes_are_checked() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    let no_rollout = error(
        "no_rollout",
        "The channel has no rollout: set rollout_version first",
        json!({}),
    );
    for fields in [
        json!({"rollout_percentage_bps": 100}),
        json!({"rollout_paused": true}),
    ] {
        let (status, body) = set_rollout(&server, fields).await;
        assert_eq!((status, body), (StatusCode::CONFLICT, no_rollout.clone()));
    }
    let (status, body) = set_rollout(&server, json!({"rollout_version": "9.9.9"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "version_not_found");
    for bad in [json!(10_001), json!(-1), json!(1.5), json!("50")] {
        let (status, body) = set_rollout(
            &server,
            json!({"rollout_version": "1.1.0", "rollout_percentage_bps": bad}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_rollout_percentage_bps");
    }
    // Nothing was written by the refusals.
    let (_, channel) = server
        .get(&format!("/channel?app_id={APP}&channel=production"), ADMIN)
        .await;
    assert_eq!(channel["rollout_version"], Value::Null);

    // A new rollout bundle starts a new rollout; abort drops it and keeps the channel's bundle.
    server.create_bundle(APP, "1.2.0").await;
    let (_, first) = set_rollout(&server, json!({"rollout_version": "1.1.0"})).await;
    let (_, second) = set_rollout(&server, json!({"rollout_version": "1.2.0"})).await;
    assert_eq!(
        (
            &first["channel"]["rollout_id"],
            &second["channel"]["rollout_id"]
        ),
        (&json!(1), &json!(2))
    );
    let abort = json!({"app_id": APP, "channel": "production", "action": "abort"});
    let (status, body) = server.post("/channel/rollout", ADMIN, abort).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["channel"]["version"],
            &body["channel"]["rollout_version"]
        ),
        (&json!("1.0.1"), &Value::Null)
    );
    let unknown = json!({"app_id": APP, "channel": "nope", "action": "abort"});
    let (status, _) = server.post("/channel/rollout", ADMIN, unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let bad = json!({"app_id": APP, "channel": "production", "action": "widen"});
    let (status, body) = server.post("/channel/rollout", ADMIN, bad).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_action"))
    );
}

#[actix_web::test]
async fn decisions_survive_a_restart_and_go_with_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(device_registry::clock::ManualClock::new(START));
    let server = TestServer::open(dir.path(), config(), clock.clone()).await;
    an_app_with_a_rollout_bundle(&server).await;
    set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 10000}),
    )
    .await;
    check_in_all(&server, 0..3).await;
    let decided = device_object(&server, 1).await["rollout"].clone();
    assert_eq!(decided["selected"], true);
    server.store.flush().unwrap();
    drop(server);

    let server = TestServer::open(dir.path(), config(), clock.clone()).await;
    assert_eq!(device_object(&server, 1).await["rollout"], decided);
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 3);

    // Erased: the device and its decision go, and the count with them.
    let (status, _) = server
        .post(
            "/device/erase",
            ADMIN,
            json!({"app_id": APP, "device_id": device(1)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 2);

    // Expired: the same.
    let retention = device_registry::sweep::Retention {
        device_ttl: 90 * 24 * HOUR,
        audit_ttl: 365 * 24 * HOUR,
    };
    let report = device_registry::sweep::sweep_once(
        server.store.as_ref(),
        START + 91 * 24 * HOUR,
        retention,
        device_registry::sweep::BATCH,
    );
    assert_eq!(report.devices, 2);
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 0);
}

/// A `/stats` event about `version` from a device.
async fn event(server: &TestServer, device_id: &str, version: &str, action: &str, fields: Value) {
    let mut body = device_body(APP, device_id);
    body["version_name"] = json!(version);
    body["action"] = json!(action);
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let (status, answer) = server.plugin("/stats", body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[actix_web::test]
async fn bundle_health_counts_what_production_devices_report_per_day() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    for n in 0..8 {
        event(&server, &device(n), "1.1.0", "download_complete", json!({})).await;
        event(&server, &device(n), "1.1.0", "set", json!({})).await;
    }
    for n in 8..16 {
        event(&server, &device(n), "1.0.1", "get", json!({})).await;
    }
    event(&server, &device(8), "1.1.0", "download_fail", json!({})).await;
    // Manifest file failures name `version:file`.
    let manifest_file = "1.1.0:index.js";
    event(
        &server,
        &device(9),
        manifest_file,
        "download_manifest_file_fail",
        json!({}),
    )
    .await;
    // Not counted: test devices, other actions, other bundles, bundles the app does not have,
    // actions the plugin does not send, devices never seen.
    let emulator = json!({"is_emulator": true});
    event(&server, &device(10), "1.1.0", "set_fail", emulator).await;
    let dev_build = json!({"is_prod": false});
    event(&server, &device(11), "1.1.0", "set_fail", dev_build).await;
    event(&server, &device(12), "1.1.0", "get", json!({})).await;
    event(&server, &device(13), "1.0.1", "set_fail", json!({})).await;
    event(&server, &device(14), "9.9.9", "set_fail", json!({})).await;
    event(&server, &device(15), "1.1.0", "invented_fail", json!({})).await;
    event(&server, "never-seen", "1.1.0", "set_fail", json!({})).await;
    let (_, unregistered) = server
        .get(
            &format!("/bundle/health?app_id={APP}&version=9.9.9&days=1"),
            ADMIN,
        )
        .await;
    assert_eq!(unregistered["totals"]["attempts"], 0);
    server.clock.advance(24 * HOUR);
    event(&server, &device(0), "1.1.0", "set_fail", json!({})).await;

    let (status, body) = server
        .get(
            &format!("/bundle/health?app_id={APP}&version=1.1.0&days=3"),
            ADMIN,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "app_id": APP,
            "version": "1.1.0",
            "days": [
                {"date": "2023-12-31", "downloads": 0, "installs": 0, "failures": {}},
                {"date": "2024-01-01", "downloads": 8, "installs": 8,
                 "failures": {"download_fail": 1, "download_manifest_file_fail": 1}},
                {"date": "2024-01-02", "downloads": 0, "installs": 0, "failures": {"set_fail": 1}},
            ],
            "totals": {"downloads": 8, "installs": 8, "attempts": 11,
                       "failures": {"download_fail": 1, "download_manifest_file_fail": 1,
                                    "set_fail": 1}},
            "failure_rate_bps": 2727,
        })
    );
    for bad in ["days=0", "days=366", "days=x"] {
        let (status, body) = server
            .get(
                &format!("/bundle/health?app_id={APP}&version=1.1.0&{bad}"),
                ADMIN,
            )
            .await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_days"))
        );
    }
    let (status, body) = server
        .get(&format!("/bundle/health?app_id={APP}"), ADMIN)
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("missing_version"))
    );
}

/// `count` events of `action` about 1.1.0 from production devices.
async fn events(server: &TestServer, action: &str, count: usize) {
    for n in 0..count {
        event(server, &device(n), "1.1.0", action, json!({})).await;
    }
}

async fn run_guards(server: &TestServer) -> Vec<device_registry::guard::Triggered> {
    device_registry::guard::run_once(server.store.as_ref(), server.clock.now()).unwrap()
}

async fn channel(server: &TestServer) -> Value {
    let (status, body) = server
        .get(&format!("/channel?app_id={APP}&channel=production"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn audit(server: &TestServer) -> Vec<Value> {
    let (status, body) = server
        .get(&format!("/device/audit?app_id={APP}"), ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn a_guard_pauses_a_failing_rollout_and_not_a_healthy_one() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    let (status, body) = set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 5000,
               "rollout_guard": {"threshold_bps": 500, "min_attempts": 20}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["channel"]["rollout_guard"],
        json!({"threshold_bps": 500, "confidence": 0.95, "min_attempts": 20,
               "min_failures": 0, "action": "pause", "cooldown": "3600s"})
    );

    // Healthy: 2 failures in 102 attempts, lower bound under 5%.
    events(&server, "set", 100).await;
    events(&server, "update_fail", 2).await;
    assert_eq!(run_guards(&server).await, vec![]);
    assert_eq!(channel(&server).await["rollout_paused"], false);

    // Failing: 32 failures in 132 attempts.
    events(&server, "set_fail", 30).await;
    let triggered = run_guards(&server).await;
    assert_eq!(triggered.len(), 1);
    let reason = "guard pause for channel production rollout of 1.1.0: failure rate 2424 bps, \
                  lower bound 1772 bps at 0.95 confidence, threshold 500 bps, 32 failures of \
                  132 attempts";
    assert_eq!(triggered[0].reason, reason);
    let now = channel(&server).await;
    assert_eq!(now["rollout_paused"], true);
    assert_eq!(now["rollout_guard_triggered_at"], "2024-01-01T00:00:00Z");
    // Paused: it does not act again.
    assert_eq!(run_guards(&server).await, vec![]);

    // Who did what, newest first: the guard, then the admin who started the rollout.
    let log = audit(&server).await;
    let guard = json!({"threshold_bps": 500, "confidence": 0.95, "min_attempts": 20,
                       "min_failures": 0, "action": "pause", "cooldown": "3600s"});
    let running = json!({"id": 1, "version": "1.1.0", "percentage_bps": 5000, "paused": false,
                         "guard": guard});
    let mut paused = running.clone();
    paused["paused"] = json!(true);
    assert_eq!(
        log[0],
        json!({"at": "2024-01-01T00:00:00Z", "channel": "production", "actor": "guard",
               "action": "rollout", "before": running, "after": paused, "reason": reason})
    );
    assert_eq!(
        log[1],
        json!({"at": "2024-01-01T00:00:00Z", "channel": "production", "actor": "admin",
               "action": "rollout", "before": null, "after": running})
    );
    // A device's own log does not list them.
    let (_, own) = server
        .get(
            &format!("/device/audit?app_id={APP}&device_id={}", device(0)),
            ADMIN,
        )
        .await;
    assert_eq!(own["data"], json!([]));
}

#[actix_web::test]
async fn a_guard_can_roll_back_or_only_notify_once_per_cooldown() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 10000,
               "rollout_guard": {"threshold_bps": 1000, "action": "notify", "cooldown": "1h"}}),
    )
    .await;
    events(&server, "set", 10).await;
    events(&server, "download_fail", 10).await;
    assert_eq!(run_guards(&server).await.len(), 1);
    assert_eq!(run_guards(&server).await, vec![], "within the cooldown");
    let now = channel(&server).await;
    assert_eq!(
        (&now["rollout_paused"], &now["rollout_version"]),
        (&json!(false), &json!("1.1.0"))
    );
    server.clock.advance(2 * HOUR);
    assert_eq!(run_guards(&server).await.len(), 1, "after the cooldown");

    // Roll back (once the cooldown has passed): the rollout ends, devices go back to the
    // channel's bundle.
    server.clock.advance(2 * HOUR);
    set_rollout(
        &server,
        json!({"rollout_guard": {"threshold_bps": 1000, "action": "rollback"}}),
    )
    .await;
    let triggered = run_guards(&server).await;
    assert_eq!(
        triggered[0].action,
        device_registry::model::GuardAction::Rollback
    );
    assert_eq!(channel(&server).await["rollout_version"], Value::Null);
    assert_eq!(audit(&server).await[0]["after"], Value::Null);
    let answer = server.check_in(APP, &device(0), json!({})).await;
    assert_eq!(answer["version"], "1.0.1");

    // The same bundle rolled out again the same day: the failures counted before it started
    // are not its own, and its guard does not act on them.
    set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 10000,
               "rollout_guard": {"threshold_bps": 1000, "action": "rollback"}}),
    )
    .await;
    assert_eq!(run_guards(&server).await, vec![]);
    events(&server, "set_fail", 10).await;
    assert_eq!(run_guards(&server).await.len(), 1, "its own failures count");
}

#[actix_web::test]
async fn guards_are_checked() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    for bad in [
        json!({"threshold_bps": 10_001}),
        json!({"confidence": 0.9}),
        json!({"threshold_bps": 100, "confidence": 1.0}),
        json!({"threshold_bps": 100, "action": "explode"}),
        json!({"threshold_bps": 100, "cooldown": "soon"}),
        json!({"threshold_bps": 100, "min_attempts": -1}),
        json!({"threshold_bps": 100, "window": "1h"}),
        json!("pause"),
    ] {
        let (status, body) = set_rollout(
            &server,
            json!({"rollout_version": "1.1.0", "rollout_guard": bad}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_rollout_guard");
    }
    let (status, body) = set_rollout(&server, json!({"rollout_guard": null})).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("no_rollout"))
    );
}

#[actix_web::test]
async fn a_channel_created_again_does_not_inherit_the_old_ones_decisions() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 10000}),
    )
    .await;
    check_in_all(&server, 0..5).await;
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 5);

    let (status, _) = server
        .delete(
            "/channel",
            ADMIN,
            Some(json!({"app_id": APP, "channel": "production"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server
        .create_channel(
            APP,
            "production",
            json!({"version": "1.0.1", "public": true}),
        )
        .await;
    // The same name, the same rollout number, the same bundle: another channel all the same.
    let (_, body) = set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 0}),
    )
    .await;
    assert_eq!(body["channel"]["rollout_id"], 1);
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 0);
    // At 0% a device is sent the channel's bundle, and its decision of the old channel goes.
    let answer = server.check_in(APP, &device(1), json!({})).await;
    assert_eq!(answer["version"], "1.0.1", "{answer}");
    assert_eq!(device_object(&server, 1).await.get("rollout"), None);
    // Widened: decided anew for this channel.
    set_rollout(&server, json!({"rollout_percentage_bps": 10000})).await;
    let answer = server.check_in(APP, &device(1), json!({})).await;
    assert_eq!(answer["version"], "1.1.0", "{answer}");
    let kept = device_object(&server, 1).await["rollout"].clone();
    assert_eq!(
        (&kept["channel_id"], &kept["selected"]),
        (&json!(2), &json!(true))
    );
    assert_eq!(summary_rollouts(&server).await[0]["selected"], 1);
}

#[actix_web::test]
async fn resolve_never_rolls_the_dice_for_an_undecided_device() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    check_in_all(&server, 0..1).await;
    set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 5000}),
    )
    .await;
    for _ in 0..3 {
        let step = rollout_step(&server, 0).await;
        assert_eq!(
            step,
            json!({"step": "rollout", "applied": false,
                   "detail": "rollout 1 of bundle 1.1.0 at 5000 bps: not selected (rolled); \
                              not decided yet: the next check-in rolls the dice"})
        );
    }
    assert_eq!(device_object(&server, 0).await.get("rollout"), None);
}

/// A client acting on the rollout it last read (`rollout_id`) is refused once another rollout
/// replaced it, and changes nothing: the console's buttons send it.
#[actix_web::test]
async fn a_write_naming_a_replaced_rollout_is_refused() {
    let server = TestServer::new().await;
    an_app_with_a_rollout_bundle(&server).await;
    server.create_bundle(APP, "1.2.0").await;
    let (_, body) = set_rollout(
        &server,
        json!({"rollout_version": "1.1.0", "rollout_percentage_bps": 5000}),
    )
    .await;
    let first = body["channel"]["rollout_id"].as_u64().unwrap();
    // The rollout it names: applies.
    let (status, body) = set_rollout(
        &server,
        json!({"rollout_id": first, "rollout_percentage_bps": 2500}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel"]["rollout_percentage_bps"], json!(2500));

    // Another rollout replaces it; what names the first is refused, whole.
    let (_, body) = set_rollout(&server, json!({"rollout_version": "1.2.0"})).await;
    let second = body["channel"]["rollout_id"].as_u64().unwrap();
    assert_ne!(first, second);
    let changed = error(
        "rollout_changed",
        "The channel's rollout is no longer the one rollout_id names",
        json!({"rollout_id": first}),
    );
    let (status, body) = set_rollout(
        &server,
        json!({"rollout_id": first, "rollout_percentage_bps": 10000, "public": false}),
    )
    .await;
    assert_eq!((status, body), (StatusCode::CONFLICT, changed.clone()));
    for action in ["promote", "abort"] {
        let (status, body) = server
            .post(
                "/channel/rollout",
                ADMIN,
                json!({"app_id": APP, "channel": "production", "action": action,
                       "rollout_id": first}),
            )
            .await;
        assert_eq!((status, body), (StatusCode::CONFLICT, changed.clone()));
    }
    let (_, channel) = server
        .get(&format!("/channel?app_id={APP}&channel=production"), ADMIN)
        .await;
    assert_eq!(
        (
            &channel["version"],
            &channel["public"],
            &channel["rollout_version"],
            &channel["rollout_percentage_bps"]
        ),
        // (A new rollout starts at 0%.)
        (&json!("1.0.1"), &json!(true), &json!("1.2.0"), &json!(0))
    );

    // Promoting the rollout it names ends it; naming it again then finds none.
    let promote = json!({"app_id": APP, "channel": "production", "action": "promote",
                         "rollout_id": second});
    let (status, body) = server
        .post("/channel/rollout", ADMIN, promote.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel"]["version"], json!("1.2.0"));
    let (status, body) = server.post("/channel/rollout", ADMIN, promote).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::CONFLICT,
            error(
                "rollout_changed",
                "The channel's rollout is no longer the one rollout_id names",
                json!({"rollout_id": second})
            )
        )
    );

    for bad in [json!(0), json!(-1), json!("1"), json!(1.5)] {
        let (status, body) = set_rollout(&server, json!({"rollout_id": bad})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"], json!("invalid_rollout_id"), "{bad}");
    }
}
