//! The console in a real browser: headless Chromium driven through WebDriver against the real
//! binary, doing what a user does. Skipped (and said so) where Chromium is not installed.
//! `CONSOLE_SCREENSHOTS=dir` keeps the screenshots the README shows.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::process::{http, start, Server};
use crate::webdriver::Browser;

const ADMIN: &str = "browser-admin-key";
const APP: &str = "com.example.shop";
const XSS: &str = "<img src=x onerror=alert(1)>";
const DEVICES: usize = 45;

const HOSTILE_ID: &str = "<svg onload=alert(2)>";
const HOSTILE_VERSION: &str = "<i>9</i>";

/// No markup from the API became elements, and nothing ran.
fn assert_no_markup_ran(browser: &Browser) {
    let planted = browser.script(
        "return document.querySelectorAll('main img, main i, main svg svg, [onload], [onerror]').length;",
        json!([]),
    );
    assert_eq!(planted, json!(0), "markup from the API became elements");
    assert_eq!(browser.alert_text(), None, "a script from the API ran");
}

fn screenshots() -> Option<PathBuf> {
    std::env::var_os("CONSOLE_SCREENSHOTS").map(PathBuf::from)
}

fn call(server: &Server, method: &str, path: &str, key: Option<&str>, body: Value) -> Value {
    let body = body.to_string();
    let (status, answer) = http(server.port, method, path, key, Some(&body)).unwrap();
    assert!(status < 300, "{method} {path}: {status} {answer}");
    serde_json::from_str(&answer).unwrap_or(Value::Null)
}

fn platform_of(i: usize) -> &'static str {
    ["ios", "android", "electron"][i % 3]
}

/// A server with one app: a public channel on 1.0.0, a `beta` channel, two bundles, and 45
/// devices reported by the plugin (one of them with markup for a custom id).
fn seeded_server(dir: &std::path::Path) -> Server {
    let server = start(dir, Some(ADMIN));
    call(
        &server,
        "POST",
        "/app",
        Some(ADMIN),
        json!({"app_id": APP, "name": "Shop"}),
    );
    for version in ["1.0.0", "1.1.0"] {
        call(
            &server,
            "POST",
            "/bundle",
            Some(ADMIN),
            json!({"app_id": APP, "version": version, "checksum": "ab12",
                   "external_url": format!("https://cdn.example.com/{version}.zip")}),
        );
    }
    call(
        &server,
        "POST",
        "/channel",
        Some(ADMIN),
        json!({"app_id": APP, "channel": "production", "version": "1.0.0", "public": true}),
    );
    call(
        &server,
        "POST",
        "/channel",
        Some(ADMIN),
        json!({"app_id": APP, "channel": "beta", "version": "1.1.0"}),
    );
    for i in 0..DEVICES {
        let custom_id = if i == 7 {
            XSS.to_owned()
        } else {
            format!("user-{i}")
        };
        call(
            &server,
            "POST",
            "/stats",
            None,
            json!({"app_id": APP, "device_id": format!("d{i:02}"), "action": "get",
                   "platform": platform_of(i), "custom_id": custom_id,
                   "version_name": if i % 4 == 0 { "1.1.0" } else { "1.0.0" },
                   "version_build": "1", "version_code": "1", "version_os": "17.0",
                   "plugin_version": "7.0.0", "is_emulator": i % 10 == 9, "is_prod": true}),
        );
    }
    server
}

fn base(server: &Server) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

fn sign_in(browser: &Browser, server: &Server, key: &str) {
    browser.goto(&format!("{}/", base(server)));
    browser.find("#key").type_text(key);
    browser.find("#sign-in").click();
    browser.wait_text("#main h1", "Apps");
}

/// The device ids of the table's rows, in order.
fn listed(browser: &Browser) -> Vec<String> {
    browser
        .script(
            "return [...document.querySelectorAll('#devices tbody tr')].map(r => r.dataset.deviceId);",
            json!([]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// Waits for the devices table to show `first` as its first row.
fn wait_first_row(browser: &Browser, first: &str) {
    browser.wait_until(&format!("a page starting at {first}"), |b| {
        listed(b).first().map(String::as_str) == Some(first)
    });
}

fn cell(browser: &Browser, device: &str, column: usize) -> String {
    browser
        .find(&format!(
            "#devices tr[data-device-id=\"{device}\"] td:nth-child({column})"
        ))
        .text()
}

#[test]
fn a_user_signs_in_filters_pages_links_and_reads_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let Some(browser) = Browser::start("console browser test", 1280, 900) else {
        return;
    };
    let shots = screenshots();

    // `/` leads to the console; the key is asked for, and kept out of the URL and cookies.
    sign_in(&browser, &server, ADMIN);
    assert!(browser.url().ends_with("/console#/") || browser.url().ends_with("/console"));
    assert!(!browser.url().contains(ADMIN));
    assert_eq!(
        browser.script("return document.cookie;", json!([])),
        json!("")
    );
    assert_eq!(
        browser.script(
            "return sessionStorage.getItem('device-registry.key');",
            json!([])
        ),
        json!(ADMIN)
    );
    assert_eq!(browser.find("#who").text(), "admin (all)");

    // The app's devices, 20 a page: forward to the end and back again.
    browser.find("a.app-link").click();
    wait_first_row(&browser, "d00");
    assert_eq!(listed(&browser).len(), DEVICES);
    browser.find("#filters select[name=limit]").choose("20");
    browser.find("#apply-filters").click();
    browser.wait_text("#page-info", "Page 1, 20 devices");
    browser.find("#next-page").click();
    browser.wait_text("#page-info", "Page 2, 20 devices");
    wait_first_row(&browser, "d20");
    browser.find("#next-page").click();
    browser.wait_text("#page-info", "Page 3, 5 devices");
    assert_eq!(listed(&browser), ["d40", "d41", "d42", "d43", "d44"]);
    assert_eq!(browser.find("#next-page").property("disabled"), json!(true));
    browser.find("#prev-page").click();
    browser.wait_text("#page-info", "Page 2");
    wait_first_row(&browser, "d20");
    browser.find("#prev-page").click();
    wait_first_row(&browser, "d00");
    assert_eq!(browser.find("#prev-page").property("disabled"), json!(true));

    // Filters: Android devices, newest first.
    browser
        .find("#filters select[name=platform]")
        .choose("android");
    browser.find("#filters select[name=order]").choose("desc");
    browser.find("#filters select[name=limit]").choose("");
    browser.find("#apply-filters").click();
    let android: Vec<String> = (0..DEVICES)
        .rev()
        .filter(|i| platform_of(*i) == "android")
        .map(|i| format!("d{i:02}"))
        .collect();
    wait_first_row(&browser, &android[0]);
    assert_eq!(listed(&browser), android);
    assert!(browser.url().contains("platform=android"));
    // A custom id prefix narrows further.
    browser
        .find("#filters input[name=custom_id_prefix]")
        .type_text("user-1");
    browser.find("#apply-filters").click();
    wait_first_row(&browser, "d19");
    assert_eq!(listed(&browser), ["d19", "d16", "d13", "d10", "d01"]);

    // Markup in a device field is text, everywhere it is shown.
    browser.goto(&format!("{}/console#/app/{APP}/devices", base(&server)));
    wait_first_row(&browser, "d00");
    assert_eq!(cell(&browser, "d07", 3), XSS);
    assert_no_markup_ran(&browser);

    // One device: every field, its trace, then linked to beta and back.
    browser
        .find("#devices tr[data-device-id=\"d07\"] a.device-link")
        .click();
    browser.wait_text("#resolve-answer", "public_channel");
    assert_eq!(browser.find("dd[data-field=custom_id]").text(), XSS);
    assert_eq!(browser.find("dd[data-field=platform]").text(), "android");
    assert_no_markup_ran(&browser);
    // It runs the public channel's bundle already.
    assert!(browser
        .find("#resolve-answer")
        .text()
        .contains("up_to_date: No new version available"));
    assert!(browser
        .find("#precedence li.applied")
        .text()
        .contains("public_channel"));
    browser.find("#link-channel").choose("beta");
    browser.find("#link").click();
    browser.wait_text("#overrides", "channel beta");
    browser.wait_text("#resolve-answer", "channel_override");
    assert!(browser
        .find("#resolve-answer")
        .text()
        .contains("gets bundle 1.1.0"));
    assert!(browser
        .find("#precedence li.applied")
        .text()
        .contains("linked to channel beta"));
    assert_eq!(browser.find("dd[data-field=channel]").text(), "beta");
    browser.script(
        "document.getElementById('overrides').scrollIntoView();",
        json!([]),
    );
    browser.screenshot(shots.as_deref(), "console-device.png");
    browser.find("#link-version").choose("1.1.0");
    browser.find("#link").click();
    browser.wait_text("#overrides", "version 1.1.0");
    browser.find("#unlink").click();
    browser.wait_text("#overrides", "Overrides: none");
    browser.wait_text("#resolve-answer", "public_channel");
    let stored = call(
        &server,
        "GET",
        &format!("/device?app_id={APP}&device_id=d07"),
        Some(ADMIN),
        Value::Null,
    );
    assert_eq!(stored.get("channel"), None);

    // Bulk: two devices linked together, after a dry run shown for confirmation.
    browser.find("#tab-devices").click();
    wait_first_row(&browser, "d00");
    browser
        .find("#devices tr[data-device-id=\"d01\"] input.select-device")
        .click();
    browser
        .find("#devices tr[data-device-id=\"d02\"] input.select-device")
        .click();
    browser.wait_text("#selected-count", "2 selected");
    browser.find("#bulk-channel").choose("beta");
    browser.find("#bulk-link").click();
    browser.wait_text("#bulk-preview-area h3", "2 of 2 devices would change");
    let preview = browser.find("#bulk-preview tbody").text();
    assert!(preview.contains("d01 none channel beta"), "{preview}");
    // Nothing is written by the preview.
    let stored = call(
        &server,
        "GET",
        &format!("/device?app_id={APP}&device_id=d01"),
        Some(ADMIN),
        Value::Null,
    );
    assert_eq!(stored.get("channel"), None);
    browser.find("#bulk-confirm").click();
    browser.wait_text("#flash", "2 device(s) changed");
    browser.wait_until("the table to show the links", |b| {
        cell(b, "d01", 6) == "beta" && cell(b, "d02", 6) == "beta"
    });
    assert_eq!(cell(&browser, "d03", 6), "—");
    browser.script("window.scrollTo(0, 0);", json!([]));
    browser.screenshot(shots.as_deref(), "console-devices.png");
    // And unlinked together: d01 and d03, of which only d01 has an override to remove.
    for device in ["d01", "d03"] {
        browser
            .find(&format!(
                "#devices tr[data-device-id=\"{device}\"] input.select-device"
            ))
            .click();
    }
    browser.find("#bulk-unlink").click();
    browser.wait_text(
        "#bulk-preview-area h3",
        "Unlink: 1 of 2 devices would change",
    );
    let preview = browser.find("#bulk-preview tbody").text();
    assert!(preview.contains("d01 channel beta none"), "{preview}");
    browser.find("#bulk-confirm").click();
    browser.wait_text("#flash", "1 device(s) changed");
    browser.wait_until("the table to show d01 unlinked", |b| {
        cell(b, "d01", 6) == "—"
    });
    assert_eq!(cell(&browser, "d02", 6), "beta");

    // The summary, drawn.
    browser.find("#tab-summary").click();
    browser.wait_text("#summary-total", "45 devices");
    let chart = browser.find("#chart-platforms").text();
    assert!(chart.contains("15 · 33%"), "{chart}");
    let bars = browser.script(
        "return document.querySelectorAll('#chart-versions rect.bar').length;",
        json!([]),
    );
    assert_eq!(bars, json!(2));
    browser.screenshot(shots.as_deref(), "console-summary.png");

    // The audit log: the bulk unlink, the bulk link, the unlink and the links of d07.
    browser.find("#tab-audit").click();
    browser.wait_text("#audit tbody", "d07");
    let actors = browser.script(
        "return [...document.querySelectorAll('#audit tbody tr')].map(r => r.children[1].textContent);",
        json!([]),
    );
    assert_eq!(actors.as_array().unwrap().len(), 6, "{actors}");

    // Keys: one created, its secret shown once, usable.
    browser.find("#nav-keys").click();
    browser.find("#new-key-name").type_text("ci reader");
    browser.find("#new-key-mode").choose("read");
    browser.find("#create-key").click();
    let secret = browser.wait_text("#new-secret", "dr_");
    let (status, _) = http(server.port, "GET", "/app", Some(&secret), None).unwrap();
    assert_eq!(status, 200);
    browser.wait_text("#keys", "ci reader");
    browser.find("button.delete-key").click();
    browser.find("#confirm-delete-key").click();
    browser.wait_text("#flash", "deleted");
    let (status, _) = http(server.port, "GET", "/app", Some(&secret), None).unwrap();
    assert_eq!(status, 401);

    // An error from the API is shown with a way back.
    browser.goto(&format!(
        "{}/console#/app/com.example.none/devices",
        base(&server)
    ));
    browser.wait_text(".error", "app_not_found");
    browser.find(".error a.back").click();
    browser.wait_text("#main h1", "Apps");

    // Signing out forgets the key.
    browser.find("#sign-out").click();
    browser.find("#key");
    assert_eq!(
        browser.script("return sessionStorage.length;", json!([])),
        json!(0)
    );
}

#[test]
fn a_read_key_sees_no_write_action() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let key = call(
        &server,
        "POST",
        "/apikey",
        Some(ADMIN),
        json!({"name": "viewer", "mode": "read"}),
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &server,
        "POST",
        "/stats",
        None,
        json!({"app_id": APP, "device_id": HOSTILE_ID, "action": "get", "platform": "ios",
               "version_name": HOSTILE_VERSION, "version_build": "1", "plugin_version": "7.0.0",
               "is_emulator": false, "is_prod": true}),
    );
    call(
        &server,
        "POST",
        "/device",
        Some(ADMIN),
        json!({"app_id": APP, "device_id": HOSTILE_ID, "channel": "beta"}),
    );
    let Some(browser) = Browser::start("console read-key test", 1280, 900) else {
        return;
    };
    sign_in(&browser, &server, &key);
    assert_eq!(browser.find("#who").text(), "viewer (read)");
    assert!(!browser.exists("#nav-keys"));
    browser.find("a.app-link").click();
    // By device id, the hostile one first (`<` sorts before `d`).
    wait_first_row(&browser, HOSTILE_ID);
    assert!(!browser.exists("input.select-device"));
    assert!(!browser.exists("#bulk-link"));
    browser
        .find("#devices tr[data-device-id=\"d05\"] a.device-link")
        .click();
    browser.wait_text("#resolve-answer", "public_channel");
    assert!(!browser.exists("#link"));
    assert!(!browser.exists("#unlink"));
    // Markup for a device id and a version name (both come from unauthenticated plugins) is
    // text in the list, on the device's page, in the audit log and in the summary's charts.
    browser.goto(&format!(
        "{}/console#/app/{APP}/devices?order=desc",
        base(&server)
    ));
    wait_first_row(&browser, HOSTILE_ID);
    assert_eq!(cell(&browser, HOSTILE_ID, 1), HOSTILE_ID);
    assert_eq!(cell(&browser, HOSTILE_ID, 4), HOSTILE_VERSION);
    assert_no_markup_ran(&browser);
    browser
        .find(&format!(
            "#devices tr[data-device-id=\"{HOSTILE_ID}\"] a.device-link"
        ))
        .click();
    browser.wait_text("#resolve-answer", "Answer");
    assert_eq!(browser.find("dd[data-field=device_id]").text(), HOSTILE_ID);
    assert_eq!(
        browser.find("dd[data-field=version_name]").text(),
        HOSTILE_VERSION
    );
    assert_no_markup_ran(&browser);
    browser.find("#device-audit").click();
    browser.wait_text("#audit tbody", HOSTILE_ID);
    assert_no_markup_ran(&browser);
    browser.find("#tab-summary").click();
    browser.wait_text("#chart-versions", HOSTILE_VERSION);
    assert_no_markup_ran(&browser);

    // The keys page, reached by its address, says why it shows nothing.
    browser.goto(&format!("{}/console#/keys", base(&server)));
    browser.wait_text("#main", "Only a key of mode \"all\" manages keys.");
}

#[test]
fn a_wrong_key_is_refused_and_a_phone_can_use_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let Some(browser) = Browser::start("console phone test", 390, 844) else {
        return;
    };
    browser.goto(&format!("{}/console", base(&server)));
    browser.find("#key").type_text("not-a-key");
    browser.find("#sign-in").click();
    browser.wait_text("#sign-in-error .error", "Invalid API key");
    assert_eq!(
        browser.script("return sessionStorage.length;", json!([])),
        json!(0)
    );

    browser.find("#key").clear();
    browser.find("#key").type_text(ADMIN);
    browser.find("#sign-in").click();
    browser.find("a.app-link").click();
    wait_first_row(&browser, "d00");
    // Nothing wider than the screen but the table, which scrolls in its own box.
    let overflow = browser.script(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        json!([]),
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page is wider than a phone: {overflow}"
    );
    browser
        .find("#devices tr[data-device-id=\"d04\"] a.device-link")
        .click();
    browser.wait_text("#resolve-answer", "public_channel");
    let overflow = browser.script(
        "return document.documentElement.scrollWidth - window.innerWidth;",
        json!([]),
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the device page is wider than a phone: {overflow}"
    );

    // Every control is reachable from the keyboard: tabbing from the top reaches the link button.
    let reached = browser.script(
        "const seen = new Set(); for (const el of document.querySelectorAll('a[href], button, input, select')) { \
           if (el.tabIndex >= 0 && !el.disabled && el.offsetParent !== null) seen.add(el.id); } \
         return [...seen];",
        json!([]),
    );
    for id in ["link", "unlink", "sign-out", "device-audit"] {
        assert!(
            reached.as_array().unwrap().contains(&json!(id)),
            "{id}: {reached}"
        );
    }
    // Every input and select has a label.
    let unlabelled = browser.script(
        "return [...document.querySelectorAll('input, select')].filter(e => !e.closest('label') && !(e.id && document.querySelector(`label[for=\"${e.id}\"]`)) && !e.getAttribute('aria-label')).length;",
        json!([]),
    );
    assert_eq!(unlabelled, json!(0));
}
