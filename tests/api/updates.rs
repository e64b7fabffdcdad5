//! `POST /updates`: check-in and update resolution (spec section 5).

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// An app whose public channel `production` distributes 1.1.0 to devices built as 1.0.0.
async fn app_with_production(server: &TestServer, app_id: &str) {
    server.create_app(app_id).await;
    for version in ["1.0.0", "1.1.0"] {
        server.create_bundle(app_id, version).await;
    }
    server
        .create_channel(
            app_id,
            "production",
            json!({"public": true, "version": "1.1.0"}),
        )
        .await;
}

fn refused(code: &str, kind: &str) -> impl Fn(&Value) {
    let (code, kind) = (code.to_owned(), kind.to_owned());
    move |answer: &Value| {
        assert_eq!(answer["error"], code.as_str(), "{answer}");
        assert_eq!(answer["kind"], kind.as_str(), "{answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
}

fn offers(answer: &Value, version: &str) {
    assert!(answer.get("error").is_none(), "refused: {answer}");
    assert_eq!(answer["version"], version, "{answer}");
}

#[actix_web::test]
async fn a_device_behind_gets_the_public_channel_bundle_and_appears_in_the_registry() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_up").await;
    let answer = server.check_in("app_up", "DEVICE-1", json!({})).await;
    assert_eq!(
        answer,
        json!({"version": "1.1.0", "url": "https://cdn.example.com/1.1.0.zip", "checksum": "sum-1.1.0", "session_key": ""})
    );
    let (status, device) = server
        .get("/device/?app_id=app_up&device_id=device-1", ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
    // As Capgo records it: a device offered a bundle shows it as its version from then on.
    assert_eq!(device["version_name"], "1.1.0");
    assert_eq!(device["version"], 2);
    // Until it reports what it runs.
    let answer = server
        .check_in("app_up", "device-1", json!({"version_name": "1.1.0"}))
        .await;
    refused("no_new_version_available", "up_to_date")(&answer);
}

#[actix_web::test]
async fn an_unknown_app_is_refused_and_nothing_is_stored() {
    let server = TestServer::new().await;
    let (status, answer) = server
        .plugin("/updates", device_body("app_ghost", "d"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"error": "app_not_found", "message": "App not found", "kind": "failed"})
    );
    server.create_app("app_ghost").await;
    let (_, page) = server.get("/device/?app_id=app_ghost", ADMIN).await;
    assert_eq!(page["data"], json!([]));
}

#[actix_web::test]
async fn native_versions_are_coerced_or_refused_as_semver_errors() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_semver").await;
    for build in ["1", "1.0", "1.0.0", "v1.0.0"] {
        offers(
            &server
                .check_in("app_semver", "d", json!({"version_build": build}))
                .await,
            "1.1.0",
        );
    }
    // `builtin` reads as 0.0.0: readable, and 1.1.0 is then a major upgrade.
    refused("disable_auto_update_to_major", "blocked")(
        &server
            .check_in("app_semver", "d", json!({"version_build": "builtin"}))
            .await,
    );
    // As Capgo answers it, a native version that is not semver even then is a 400.
    for build in ["abc", "1.0.0.0", "", "1.x"] {
        let mut body = device_body("app_semver", &format!("bad-{build}"));
        body["version_build"] = json!(build);
        let (status, answer) = server.plugin("/updates", body).await;
        let code = if build.is_empty() {
            "missing_version_build"
        } else {
            "semver_error"
        };
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{answer}"
        );
        if !build.is_empty() {
            assert_eq!(
                answer,
                error(
                    "semver_error",
                    &format!("Native version: {build} doesn't follow semver convention"),
                    json!({"version_build": build})
                )
            );
        }
        // Nothing stored for a device whose native version cannot be read.
        let (status, _) = server
            .get(
                &format!("/device/?app_id=app_semver&device_id=bad-{build}"),
                ADMIN,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{build}");
    }
}

#[actix_web::test]
async fn malformed_bodies_are_400() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_malformed").await;
    let mut body = device_body("app_malformed", "d");
    body["platform"] = json!("symbian");
    let (status, answer) = server.plugin("/updates", body).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_platform"))
    );
    let (status, answer) = server.plugin("/updates", json!([1])).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json_body"))
    );
}

#[actix_web::test]
async fn no_channel_and_no_bundle() {
    let server = TestServer::new().await;
    server.create_app("app_nochan").await;
    server.create_bundle("app_nochan", "1.1.0").await;
    refused("no_channel", "failed")(&server.check_in("app_nochan", "d", json!({})).await);
    // A default channel name that matches nothing.
    server
        .create_channel("app_nochan", "production", json!({"public": true}))
        .await;
    refused("no_channel", "failed")(
        &server
            .check_in("app_nochan", "d", json!({"defaultChannel": "nope"}))
            .await,
    );
    // The public channel has no bundle: the device goes back to its builtin bundle, as Capgo
    // answers it (plugins before 6.2.0 cannot, and are told so).
    let answer = server
        .check_in("app_nochan", "d", json!({"plugin_version": "6.2.0"}))
        .await;
    assert_eq!(
        answer,
        json!({"error": "already_on_builtin", "message": "Already on builtin", "kind": "up_to_date",
               "version": "builtin"})
    );
    refused("revert_to_builtin_plugin_version_too_old", "failed")(
        &server
            .check_in("app_nochan", "d", json!({"plugin_version": "5.9.5"}))
            .await,
    );
    // The device-kind rules still apply to it.
    server
        .create_channel("app_nochan", "production", json!({"allow_prod": false}))
        .await;
    let answer = server
        .check_in("app_nochan", "d", json!({"plugin_version": "8.51.14"}))
        .await;
    assert_eq!(
        answer,
        json!({"error": "disable_prod_build", "message": "Cannot update, prod build is disabled",
               "kind": "blocked", "version": "builtin", "old": "1.0.0"})
    );
    // The device is registered all the same: it did check in.
    let (status, _) = server
        .get("/device/?app_id=app_nochan&device_id=d", ADMIN)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_device_on_the_channel_bundle_is_up_to_date() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_same").await;
    let answer = server
        .check_in("app_same", "d", json!({"version_name": "1.1.0"}))
        .await;
    assert_eq!(
        answer,
        json!({"error": "no_new_version_available", "message": "No new version available", "kind": "up_to_date"})
    );
}

/// Every channel rule, each on its own channel settings, with the answer it must give.
#[actix_web::test]
async fn every_channel_rule_refuses_with_its_code() {
    let server = TestServer::new().await;
    server.create_app("app_rules").await;
    for version in ["0.9.0", "1.0.0", "1.0.0+2", "1.0.1", "1.1.0", "2.0.0"] {
        server.create_bundle("app_rules", version).await;
    }
    // (channel settings, device fields, expected error or Ok(version))
    type Expected = Result<&'static str, (&'static str, &'static str)>;
    let cases: Vec<(Value, Value, Expected)> = vec![
        (
            json!({"version": "1.1.0", "ios": false}),
            json!({}),
            Err(("disabled_platform_ios", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "android": false}),
            json!({"platform": "android"}),
            Err(("disabled_platform_android", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "electron": false}),
            json!({"platform": "electron"}),
            Err(("disabled_platform_electron", "blocked")),
        ),
        (
            json!({"version": "2.0.0"}),
            json!({}),
            Err(("disable_auto_update_to_major", "blocked")),
        ),
        (
            json!({"version": "2.0.0", "disableAutoUpdate": "none"}),
            json!({}),
            Ok("2.0.0"),
        ),
        (
            json!({"version": "1.1.0", "disableAutoUpdate": "minor"}),
            json!({}),
            Err(("disable_auto_update_to_minor", "blocked")),
        ),
        (
            json!({"version": "1.0.1", "disableAutoUpdate": "minor"}),
            json!({}),
            Ok("1.0.1"),
        ),
        (
            json!({"version": "1.0.1", "disableAutoUpdate": "patch"}),
            json!({}),
            Err(("disable_auto_update_to_patch", "blocked")),
        ),
        (
            json!({"version": "1.0.0+2", "disableAutoUpdate": "patch"}),
            json!({}),
            Ok("1.0.0+2"),
        ),
        (
            json!({"version": "1.1.0", "disableAutoUpdate": "version_number"}),
            json!({}),
            Err(("misconfigured_channel", "failed")),
        ),
        (
            json!({"version": "0.9.0", "disableAutoUpdate": "none"}),
            json!({}),
            Err(("disable_auto_update_under_native", "blocked")),
        ),
        (
            json!({"version": "0.9.0", "disableAutoUpdate": "none", "disableAutoUpdateUnderNative": false}),
            json!({}),
            Ok("0.9.0"),
        ),
        (
            json!({"version": "1.1.0", "allow_prod": false}),
            json!({"is_prod": true}),
            Err(("disable_prod_build", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "allow_dev": false}),
            json!({"is_prod": false}),
            Err(("disable_dev_build", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "allow_device": false}),
            json!({"is_emulator": false}),
            Err(("disable_device", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "allow_emulator": false}),
            json!({"is_emulator": true}),
            Err(("disable_emulator", "blocked")),
        ),
        (
            json!({"version": "1.1.0", "allow_emulator": false}),
            json!({"is_emulator": false}),
            Ok("1.1.0"),
        ),
        // The first rule in Capgo's order answers: platform before build type.
        (
            json!({"version": "1.1.0", "ios": false, "allow_prod": false}),
            json!({}),
            Err(("disabled_platform_ios", "blocked")),
        ),
        // Up to date before anything else.
        (
            json!({"version": "1.0.0", "ios": false}),
            json!({}),
            Err(("no_new_version_available", "up_to_date")),
        ),
    ];
    for (i, (settings, fields, expected)) in cases.into_iter().enumerate() {
        let channel = format!("rule{i}");
        server.create_channel("app_rules", &channel, settings).await;
        // Through a channel override: the one way a device reaches a channel that does not
        // allow its platform.
        let device = format!("device{i}");
        server
            .post(
                "/device",
                ADMIN,
                json!({"app_id": "app_rules", "device_id": device, "channel": channel}),
            )
            .await;
        let answer = server.check_in("app_rules", &device, fields).await;
        match expected {
            Ok(version) => offers(&answer, version),
            Err((code, kind)) => refused(code, kind)(&answer),
        }
        server
            .delete(
                "/channel",
                ADMIN,
                Some(json!({"app_id": "app_rules", "channel": channel})),
            )
            .await;
    }
}

#[actix_web::test]
async fn min_update_version_gates_version_number_channels() {
    let server = TestServer::new().await;
    server.create_app("app_meta").await;
    for (version, min) in [("1.1.0", "2.0.0"), ("1.2.0", "1.0.0")] {
        let (status, body) = server
            .post(
                "/bundle",
                ADMIN,
                json!({"app_id": "app_meta", "version": version, "external_url": "https://x.example/b.zip",
                       "checksum": "c", "min_update_version": min}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    server
        .create_channel(
            "app_meta",
            "production",
            json!({"public": true, "version": "1.1.0", "disableAutoUpdate": "version_number"}),
        )
        .await;
    refused("disable_auto_update_to_metadata", "blocked")(
        &server.check_in("app_meta", "d", json!({})).await,
    );
    server
        .create_channel("app_meta", "production", json!({"version": "1.2.0"}))
        .await;
    offers(&server.check_in("app_meta", "d", json!({})).await, "1.2.0");
}

#[actix_web::test]
async fn a_default_channel_the_device_may_not_use_is_never_revealed() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_private").await;
    server.create_bundle("app_private", "1.2.0").await;
    server
        .create_channel("app_private", "internal", json!({"version": "1.2.0"}))
        .await;
    server
        .create_channel(
            "app_private",
            "android-only",
            json!({"version": "1.2.0", "allow_device_self_set": true, "ios": false}),
        )
        .await;
    // A private channel that devices may not choose, one that does not serve the platform and
    // a name that matches nothing all answer the same, as Capgo answers them: no fallback to
    // the public channel, and nothing about the channel (no version, no major).
    let no_channel = json!({"error": "no_channel", "message": "no default channel or override", "kind": "failed"});
    for name in ["internal", "android-only", "nope"] {
        let answer = server
            .check_in("app_private", "d", json!({"defaultChannel": name}))
            .await;
        assert_eq!(answer, no_channel, "{name}");
        let (_, trace) = server
            .get("/device/resolve?app_id=app_private&device_id=d", ADMIN)
            .await;
        assert_eq!(trace["answer"], no_channel, "{name}");
        assert_eq!(
            trace["precedence"].as_array().unwrap().last().unwrap()["applied"],
            false
        );
    }
    // Linked through the Devices API, the same private channel is fine.
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_private", "device_id": "d", "channel": "internal"}),
        )
        .await;
    let by_default = json!({"defaultChannel": "internal"});
    offers(
        &server
            .check_in("app_private", "d", by_default.clone())
            .await,
        "1.2.0",
    );
    // Self-set allowed: fine for anyone who names it.
    server
        .create_channel(
            "app_private",
            "internal",
            json!({"allow_device_self_set": true}),
        )
        .await;
    offers(
        &server.check_in("app_private", "other", by_default).await,
        "1.2.0",
    );
}

#[actix_web::test]
async fn refusals_carry_what_capgo_sends_with_them() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_extra").await;
    server.create_bundle("app_extra", "2.0.0").await;
    server
        .create_channel("app_extra", "production", json!({"version": "2.0.0"}))
        .await;
    // The plugin's majorAvailable/breakingAvailable events read `version` from this refusal.
    let answer = server.check_in("app_extra", "d", json!({})).await;
    assert_eq!(
        answer,
        json!({"error": "disable_auto_update_to_major", "message": "Cannot upgrade major version",
               "kind": "blocked", "version": "2.0.0", "old": "1", "major": true})
    );
    server
        .create_channel(
            "app_extra",
            "production",
            json!({"version": "1.1.0", "disableAutoUpdate": "minor"}),
        )
        .await;
    let answer = server.check_in("app_extra", "d", json!({})).await;
    assert_eq!(
        answer,
        json!({"error": "disable_auto_update_to_minor", "message": "Cannot upgrade minor version",
               "kind": "blocked", "version": "1.1.0", "old": "1", "major": true})
    );
    server
        .create_channel(
            "app_extra",
            "production",
            json!({"disableAutoUpdate": "none", "allow_emulator": false}),
        )
        .await;
    let answer = server
        .check_in("app_extra", "d", json!({"is_emulator": true}))
        .await;
    assert_eq!(
        answer,
        json!({"error": "disable_emulator", "message": "Cannot update, emulator is disabled",
               "kind": "blocked", "version": "1.1.0", "old": "1.0.0"})
    );
}

#[actix_web::test]
async fn overrides_take_precedence_and_unlinking_restores_the_default() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_prec").await;
    for version in ["1.2.0", "1.3.0", "1.4.0"] {
        server.create_bundle("app_prec", version).await;
    }
    server
        .create_channel(
            "app_prec",
            "beta",
            json!({"version": "1.2.0", "allow_device_self_set": true}),
        )
        .await;
    server
        .create_channel("app_prec", "alpha", json!({"version": "1.3.0"}))
        .await;
    let beta = json!({"defaultChannel": "beta"});

    offers(&server.check_in("app_prec", "d", json!({})).await, "1.1.0");
    offers(
        &server.check_in("app_prec", "d", beta.clone()).await,
        "1.2.0",
    );
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_prec", "device_id": "d", "channel": "alpha"}),
        )
        .await;
    offers(
        &server.check_in("app_prec", "d", beta.clone()).await,
        "1.3.0",
    );
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_prec", "device_id": "d", "version_id": "1.4.0"}),
        )
        .await;
    offers(
        &server.check_in("app_prec", "d", beta.clone()).await,
        "1.4.0",
    );
    // Pinned to what it runs: up to date.
    refused("no_new_version_available", "up_to_date")(
        &server
            .check_in("app_prec", "d", json!({"version_name": "1.4.0"}))
            .await,
    );
    server
        .delete(
            "/device",
            ADMIN,
            Some(json!({"app_id": "app_prec", "device_id": "d"})),
        )
        .await;
    offers(&server.check_in("app_prec", "d", beta).await, "1.2.0");
    offers(&server.check_in("app_prec", "d", json!({})).await, "1.1.0");
}

#[actix_web::test]
async fn a_version_override_skips_the_channel_rules() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_pin").await;
    server.create_bundle("app_pin", "3.0.0").await;
    server
        .create_channel(
            "app_pin",
            "production",
            json!({"version": "3.0.0", "allow_prod": false}),
        )
        .await;
    // The channel's major-upgrade rule refuses 3.0.0 (and its prod-build rule would next).
    refused("disable_auto_update_to_major", "blocked")(
        &server.check_in("app_pin", "d", json!({})).await,
    );
    server
        .post(
            "/device",
            ADMIN,
            json!({"app_id": "app_pin", "device_id": "d", "version_id": "3.0.0"}),
        )
        .await;
    offers(&server.check_in("app_pin", "d", json!({})).await, "3.0.0");
}

#[actix_web::test]
async fn semver_comparisons_are_numeric_not_textual() {
    let server = TestServer::new().await;
    server.create_app("app_numeric").await;
    server.create_bundle("app_numeric", "1.10.0").await;
    server.create_bundle("app_numeric", "1.9.0").await;
    server
        .create_channel(
            "app_numeric",
            "production",
            json!({"public": true, "version": "1.10.0", "disableAutoUpdate": "none"}),
        )
        .await;
    // 1.10.0 is above native 1.9.0: offered (a string comparison would call it a downgrade).
    offers(
        &server
            .check_in(
                "app_numeric",
                "d",
                json!({"version_build": "1.9.0", "version_name": "1.9.0"}),
            )
            .await,
        "1.10.0",
    );
    server
        .create_channel("app_numeric", "production", json!({"version": "1.9.0"}))
        .await;
    refused("disable_auto_update_under_native", "blocked")(
        &server
            .check_in(
                "app_numeric",
                "d",
                json!({"version_build": "1.10.0", "version_name": "1.10.0"}),
            )
            .await,
    );
}

#[actix_web::test]
async fn check_ins_follow_touch_interval() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_touchup").await;
    server.check_in("app_touchup", "d", json!({})).await;
    server.clock.advance(30 * 60 * SECOND);
    server.check_in("app_touchup", "d", json!({})).await;
    let (_, device) = server
        .get("/device/?app_id=app_touchup&device_id=d", ADMIN)
        .await;
    assert_eq!(device["updated_at"], "2024-01-01T00:00:00Z");
    server.clock.advance(HOUR);
    server.check_in("app_touchup", "d", json!({})).await;
    let (_, device) = server
        .get("/device/?app_id=app_touchup&device_id=d", ADMIN)
        .await;
    assert_eq!(device["updated_at"], "2024-01-01T01:30:00Z");
}

#[actix_web::test]
async fn versions_compare_as_capgo_compares_them() {
    let server = TestServer::new().await;
    app_with_production(&server, "app_cmp").await;
    server.create_bundle("app_cmp", "1.2.3").await;
    server
        .create_channel(
            "app_cmp",
            "production",
            json!({"version": "1.2.3", "disableAutoUpdate": "none"}),
        )
        .await;
    // Build metadata does not order versions: native 1.2.3+42 is not above bundle 1.2.3.
    offers(
        &server
            .check_in(
                "app_cmp",
                "d",
                json!({"version_build": "1.2.3+42", "version_name": "1.2.2"}),
            )
            .await,
        "1.2.3",
    );
    // A device on its builtin bundle runs its native version, read as semver: `1.2.3` is
    // `v1.2.3`, so there is nothing to download.
    refused("no_new_version_available", "up_to_date")(
        &server
            .check_in(
                "app_cmp",
                "builtin",
                json!({"version_build": "v1.2.3", "version_name": "builtin"}),
            )
            .await,
    );
    let (_, device) = server
        .get("/device/?app_id=app_cmp&device_id=builtin", ADMIN)
        .await;
    assert_eq!(
        (&device["version_name"], &device["version_build"]),
        (&json!("1.2.3"), &json!("v1.2.3"))
    );
}

#[actix_web::test]
async fn a_bundle_manifest_goes_to_the_plugins_that_read_one() {
    let server = TestServer::new().await;
    server.create_app("app_manifest").await;
    let manifest = json!([
        {"file_name": "index.html", "file_hash": "9f86d081", "download_url": "https://cdn.example.com/1.1.0/index.html"},
        {"file_name": "js/app.js", "file_hash": "60303ae2", "download_url": "https://cdn.example.com/1.1.0/js/app.js"},
    ]);
    let (status, body) = server
        .post(
            "/bundle",
            ADMIN,
            json!({"app_id": "app_manifest", "version": "1.1.0",
                   "external_url": "https://cdn.example.com/1.1.0.zip", "checksum": "c",
                   "manifest": manifest}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bundle"]["manifest"], manifest);
    server
        .create_channel(
            "app_manifest",
            "production",
            json!({"version": "1.1.0", "public": true}),
        )
        .await;
    let bundle = json!({"version": "1.1.0", "url": "https://cdn.example.com/1.1.0.zip",
                        "checksum": "c", "session_key": ""});
    let mut with_manifest = bundle.clone();
    with_manifest["manifest"] = manifest.clone();
    for (plugin_version, expected) in [
        ("5.9.5", &bundle),
        ("5.10.0", &with_manifest),
        ("6.24.9", &bundle),
        ("6.25.0", &with_manifest),
        ("7.0.34", &bundle),
        ("7.0.35", &with_manifest),
        ("8.51.14", &with_manifest),
    ] {
        let answer = server
            .check_in(
                "app_manifest",
                &format!("device-{plugin_version}"),
                json!({"plugin_version": plugin_version}),
            )
            .await;
        assert_eq!(&answer, expected, "{plugin_version}");
    }
}

#[actix_web::test]
async fn a_manifest_too_large_to_keep_is_refused() {
    let mut config = config();
    config.server.max_body = device_registry::config::ByteSize(4 << 20);
    let server = TestServer::with_config(config).await;
    server.create_app("app_big_manifest").await;
    let manifest: Vec<Value> = (0..600)
        .map(|n| {
            json!({"file_name": format!("{n:04}-{}", "x".repeat(1000)), "file_hash": "h",
                   "download_url": "https://cdn.example.com/f"})
        })
        .collect();
    let (status, body) = server
        .post(
            "/bundle",
            ADMIN,
            json!({"app_id": "app_big_manifest", "version": "1.0.0",
                   "external_url": "https://cdn.example.com/1.0.0.zip", "checksum": "c",
                   "manifest": manifest}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_manifest"))
    );
    let (_, bundles) = server.get("/bundle?app_id=app_big_manifest", ADMIN).await;
    assert_eq!(bundles, json!([]));
}
