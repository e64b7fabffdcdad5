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
/// A tag no page of the console has: found in the page, it came from the API as markup.
const PLANTED: &str = "<x-planted>planted</x-planted>";

/// No markup from the API became elements (the script's own discipline; the policy would also
/// keep a planted handler from running, so the elements are what is checked).
fn assert_no_markup_ran(browser: &Browser) {
    let planted = browser.script(
        "return document.querySelectorAll('x-planted, main img, main i, main svg svg, [onload], [onerror]').length;",
        json!([]),
    );
    assert_eq!(planted, json!(0), "markup from the API became elements");
    assert_eq!(browser.alert_text(), None, "a script from the API ran");
}

/// Every input and select of the page has a label.
fn assert_labelled(browser: &Browser, page: &str) {
    let unlabelled = browser.script(
        "return [...document.querySelectorAll('input, select')].filter(e => !e.closest('label') && !(e.id && document.querySelector(`label[for=\"${e.id}\"]`)) && !e.getAttribute('aria-label')).map(e => e.name);",
        json!([]),
    );
    assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
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
        let custom_id = match i {
            7 => XSS.to_owned(),
            11 => PLANTED.to_owned(),
            _ => format!("user-{i}"),
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

/// The device as the API answers it.
fn stored(server: &Server, device: &str) -> Value {
    call(
        server,
        "GET",
        &format!("/device?app_id={APP}&device_id={device}"),
        Some(ADMIN),
        Value::Null,
    )
}

/// Ticks a device's box in the list.
fn tick(browser: &Browser, device: &str) {
    browser
        .find(&format!(
            "#devices tr[data-device-id=\"{device}\"] input.select-device"
        ))
        .click();
}

/// Does `action` and waits until the page it leads to has been drawn (not merely the old one
/// still showing what is expected).
fn after_render(browser: &Browser, action: impl FnOnce()) {
    browser.script(
        "document.querySelector('main > *').dataset.old = '1';",
        json!([]),
    );
    action();
    browser.wait_until("the page to be drawn again", |b| {
        b.script(
            "const first = document.querySelector('main > *'); return first !== null && !first.dataset.old && !document.querySelector('main .loading');",
            json!([]),
        ) == json!(true)
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
    browser.find("#page-next").click();
    browser.wait_text("#page-info", "Page 2, 20 devices");
    wait_first_row(&browser, "d20");
    // The page is in the address: a reload shows it again.
    assert!(browser.url().contains("page=2"), "{}", browser.url());
    after_render(&browser, || {
        browser.script("window.location.reload();", json!([]));
    });
    browser.wait_text("#page-info", "Page 2, 20 devices");
    wait_first_row(&browser, "d20");
    browser.find("#page-next").click();
    browser.wait_text("#page-info", "Page 3, 5 devices");
    assert_eq!(listed(&browser), ["d40", "d41", "d42", "d43", "d44"]);
    assert_eq!(browser.find("#page-next").property("disabled"), json!(true));
    browser.find("#page-prev").click();
    browser.wait_text("#page-info", "Page 2");
    wait_first_row(&browser, "d20");
    browser.find("#page-prev").click();
    wait_first_row(&browser, "d00");
    assert_eq!(browser.find("#page-prev").property("disabled"), json!(true));

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

    assert_eq!(cell(&browser, "d11", 3), PLANTED);
    let seen = cell(&browser, "d11", 9);
    assert!(seen.ends_with(" ago") || seen == "now", "last seen: {seen}");
    assert_labelled(&browser, "the devices page");

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
    // Link with nothing chosen: said in place, dismissed, nothing sent.
    browser.find("#link").click();
    browser.wait_text("#device-action .error", "Choose a channel or a version");
    browser.find("#device-action .error button.dismiss").click();
    browser.wait_until("the message to go", |b| !b.exists("#device-action .error"));
    assert_labelled(&browser, "a device's page");
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
    assert_eq!(stored(&server, "d07").get("channel"), None);

    // Bulk: two devices linked together, after a dry run shown for confirmation.
    browser.find("#tab-devices").click();
    wait_first_row(&browser, "d00");
    tick(&browser, "d01");
    tick(&browser, "d02");
    browser.wait_text("#selected-count", "2 selected");
    browser.find("#bulk-channel").choose("beta");
    browser.find("#bulk-link").click();
    browser.wait_text("#bulk-preview-area h3", "2 of 2 devices would change");
    let preview = browser.find("#bulk-preview tbody").text();
    assert!(preview.contains("d01 none channel beta"), "{preview}");
    // Nothing is written by the preview.
    assert_eq!(stored(&server, "d01").get("channel"), None);
    browser.find("#bulk-confirm").click();
    browser.wait_text("#flash", "2 device(s) changed");
    browser.wait_until("the table to show the links", |b| {
        cell(b, "d01", 6) == "beta" && cell(b, "d02", 6) == "beta"
    });
    assert_eq!(cell(&browser, "d03", 6), "—");
    browser.script("window.scrollTo(0, 0);", json!([]));
    browser.screenshot(shots.as_deref(), "console-devices.png");
    // And unlinked together: d01 and d03, of which only d01 has an override to remove.
    tick(&browser, "d01");
    tick(&browser, "d03");
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

    // The other filters, each through its control.
    let apply = |browser: &Browser, filters: &[(&str, &str)], first: &str| {
        after_render(browser, || browser.find("#clear-filters").click());
        for (name, value) in filters {
            let control = browser.find(&format!("#filters [name={name}]"));
            match control.property("tagName").as_str() {
                Some("SELECT") => control.choose(value),
                _ => control.type_text(value),
            }
        }
        after_render(browser, || browser.find("#apply-filters").click());
        if first.is_empty() {
            browser.wait_text("#no-devices", "No device matches.");
        } else {
            wait_first_row(browser, first);
        }
        listed(browser)
    };
    assert_eq!(apply(&browser, &[("has_override", "true")], "d02"), ["d02"]);
    assert_eq!(apply(&browser, &[("channel", "beta")], "d02"), ["d02"]);
    assert_eq!(
        apply(&browser, &[("is_emulator", "true")], "d09"),
        ["d09", "d19", "d29", "d39"]
    );
    assert_eq!(apply(&browser, &[("custom_id", "user-12")], "d12"), ["d12"]);
    let newest_first: Vec<String> = (0..DEVICES)
        .rev()
        .filter(|i| i % 4 == 0)
        .map(|i| format!("d{i:02}"))
        .collect();
    assert_eq!(
        apply(
            &browser,
            &[("version_name", "1.1.0"), ("order", "desc")],
            "d44"
        ),
        newest_first
    );
    let oldest_first: Vec<String> = newest_first.into_iter().rev().collect();
    assert_eq!(
        apply(
            &browser,
            &[("version_name", "1.1.0"), ("order", "asc")],
            "d00"
        ),
        oldest_first
    );
    assert!(apply(&browser, &[("is_prod", "false")], "").is_empty());
    browser.find("#clear-filters").click();
    wait_first_row(&browser, "d00");

    // A device linked before it ever checks in ("beta device registration").
    browser.find("#by-id-device").type_text("Future-1");
    browser.find("#by-id-open").click();
    browser.wait_text("#not-seen", "has not checked in yet");
    browser.find("#link-channel").choose("beta");
    browser.find("#link").click();
    browser.wait_text("#flash", "Linked");
    let link = call(
        &server,
        "GET",
        &format!("/device/audit?app_id={APP}&device_id=future-1"),
        Some(ADMIN),
        Value::Null,
    );
    assert_eq!(link["data"][0]["after"]["channel"], json!("beta"), "{link}");

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

    // The audit log, newest first: future-1's link, the bulk unlink, the bulk link, then d07's
    // unlink and its two links.
    browser.find("#tab-audit").click();
    browser.wait_text("#audit tbody", "d07");
    let entries = browser.script(
        "return [...document.querySelectorAll('#audit tbody tr')].map(r => [...r.children].slice(1, 6).map(c => c.textContent).join(' | '));",
        json!([]),
    );
    let entries: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        entries,
        [
            "future-1 | link | admin | none | channel beta",
            "d01 | unlink | admin | channel beta | none",
            "d02 | link | admin | none | channel beta",
            "d01 | link | admin | none | channel beta",
            "d07 | unlink | admin | channel beta, version 1.1.0 | none",
            "d07 | link | admin | channel beta | channel beta, version 1.1.0",
            "d07 | link | admin | none | channel beta",
        ]
    );

    // Keys: one created, its secret shown once, usable.
    browser.find("#nav-keys").click();
    browser.find("#new-key-name").type_text("ci reader");
    browser.find("#new-key-mode").choose("read");
    browser
        .find("#new-key [name=expires_at]")
        .type_text("tomorrow");
    browser.find("#create-key").click();
    browser.wait_text("#key-action .error", "invalid_expires_at");
    assert_eq!(
        browser.find("#new-key-name").property("value"),
        json!("ci reader")
    );
    browser.find("#key-action .error button.dismiss").click();
    browser.find("#new-key [name=expires_at]").clear();
    assert_labelled(&browser, "the keys page");
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
    browser.find(".error button.back").click();
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
    // 90 audit entries more: two pages of the audit log.
    let all: Vec<String> = (0..DEVICES).map(|i| format!("d{i:02}")).collect();
    call(
        &server,
        "POST",
        "/device/bulk",
        Some(ADMIN),
        json!({"app_id": APP, "device_ids": all, "channel": "beta"}),
    );
    call(
        &server,
        "DELETE",
        "/device/bulk",
        Some(ADMIN),
        json!({"app_id": APP, "device_ids": all}),
    );
    call(
        &server,
        "POST",
        "/channel",
        Some(ADMIN),
        json!({"app_id": APP, "channel": "production", "rollout_version": "1.1.0",
               "rollout_percentage_bps": 1000}),
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

    // A channel's rollout in the audit log: the channel where a device would be.
    browser.find("#tab-audit").click();
    browser.wait_text("#audit tbody tr.rollout-entry", "channel production");
    let entry = browser
        .script(
            "return [...document.querySelector('#audit tr.rollout-entry').children].slice(1, 6).map(c => c.textContent).join(' | ');",
            json!([]),
        );
    assert_eq!(
        entry,
        json!("channel production | rollout | admin | none | 1.1.0 to 10.00%")
    );

    // The audit log by its cursor: 92 entries, 50 a page.
    browser.find("#tab-audit").click();
    browser.wait_text("#audit-info", "Page 1");
    assert!(browser.exists("#audit-prev[disabled]"));
    after_render(&browser, || browser.find("#audit-next").click());
    browser.wait_text("#audit-info", "Page 2");
    let rows = browser.script(
        "return document.querySelectorAll('#audit tbody tr').length;",
        json!([]),
    );
    assert_eq!(rows, json!(42));
    assert!(browser.exists("#audit-next[disabled]"));
    after_render(&browser, || browser.find("#audit-prev").click());
    browser.wait_text("#audit-info", "Page 1");
    browser.wait_text("#audit tbody tr.rollout-entry", "channel production");

    // The app's channels, with the rollout, and its bundles (no form to change them).
    assert!(!browser.exists("#new-app"));
    browser.find("#tab-channels").click();
    let channels = browser.wait_text("#channels tbody", "production");
    assert!(channels.contains("1.1.0 to 10.00%"), "{channels}");
    assert!(channels.contains("beta"), "{channels}");
    browser.find("#tab-bundles").click();
    let bundles = browser.wait_text("#bundles tbody", "https://cdn.example.com/1.1.0.zip");
    assert!(bundles.contains("1.0.0"), "{bundles}");
    assert!(!browser.exists("#bundle-form") && !browser.exists("button.delete"));
    browser.find("#tab-channels").click();
    browser.wait_text("#channels tbody", "production");
    assert!(!browser.exists("#channel-form") && !browser.exists("button.delete"));

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
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
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
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        json!([]),
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the device page is wider than a phone: {overflow}"
    );

    // From the top of the page, the keyboard alone reaches the pickers, then Link and Unlink.
    browser.script(
        "document.activeElement.blur(); window.scrollTo(0, 0);",
        json!([]),
    );
    let mut reached = Vec::new();
    for _ in 0..60 {
        let id = browser.press_tab();
        if id == "unlink" {
            break;
        }
        reached.push(id);
    }
    let order: Vec<&str> = reached
        .iter()
        .map(String::as_str)
        .filter(|id| ["tab-devices", "link-channel", "link-version", "link"].contains(id))
        .collect();
    assert_eq!(
        order,
        ["tab-devices", "link-channel", "link-version", "link"],
        "{reached:?}"
    );
    assert_labelled(&browser, "a device's page at a phone's width");
}

#[test]
fn a_new_self_hoster_sets_up_an_app_without_curl() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Some(ADMIN));
    let Some(browser) = Browser::start("console setup test", 1280, 900) else {
        return;
    };
    sign_in(&browser, &server, ADMIN);
    browser.wait_text("#main", "No app yet");

    // An app, then a bundle, then the public channel that serves it.
    browser.find("#new-app-id").type_text("com.example.new");
    browser.find("#new-app-name").type_text("New");
    browser.find("#new-app-submit").click();
    browser.wait_text("#flash", "App com.example.new created");
    browser.wait_text("#main h1", "com.example.new");
    browser.find("#tab-bundles").click();
    browser.find("#bundle-version").type_text("1.0.1");
    browser
        .find("#bundle-url")
        .type_text("https://cdn.example.com/1.0.1.zip");
    browser.find("#bundle-checksum").type_text("ab12");
    browser.find("#bundle-form-submit").click();
    browser.wait_text("#bundles tbody", "https://cdn.example.com/1.0.1.zip");
    // A second registration of the same version is refused in place, the form kept.
    browser.find("#bundle-version").type_text("1.0.1");
    browser
        .find("#bundle-url")
        .type_text("https://cdn.example.com/other.zip");
    browser.find("#bundle-checksum").type_text("cd34");
    browser.find("#bundle-form-submit").click();
    browser.wait_text("#bundle-form-area .error", "version_already_exists");
    assert_eq!(
        browser.find("#bundle-url").property("value"),
        json!("https://cdn.example.com/other.zip")
    );

    browser.find("#tab-channels").click();
    browser.find("#channel-name").type_text("production");
    browser.find("#channel-version").choose("1.0.1");
    browser.find("#channel-public").choose("true");
    browser.find("#channel-form-submit").click();
    browser.wait_text("#flash", "Channel production saved");
    let row = browser.wait_text("#channels tbody", "production");
    assert!(
        row.contains("production 1.0.1 yes ios, android, electron"),
        "{row}"
    );

    // A device checking in now is offered the bundle, and shows in the list.
    let body = json!({"app_id": "com.example.new", "device_id": "first-device",
        "platform": "android", "version_name": "1.0.0", "version_build": "1.0.0",
        "plugin_version": "7.0.0", "is_emulator": false, "is_prod": true});
    let (status, answer) = http(
        server.port,
        "POST",
        "/updates",
        None,
        Some(&body.to_string()),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(answer.contains("\"version\":\"1.0.1\""), "{answer}");
    browser.find("#tab-devices").click();
    wait_first_row(&browser, "first-device");

    // The bundle in use cannot be deleted: said in place, with the API's reason.
    browser.find("#tab-bundles").click();
    browser
        .find("#bundles tr[data-version=\"1.0.1\"] button.delete")
        .click();
    browser.find("#bundle-action button.confirm-delete").click();
    browser.wait_text("#bundle-action .error", "cannot_delete_linked_version");
    // Once the channel is gone, it can.
    browser.find("#tab-channels").click();
    browser
        .find("#channels tr[data-channel=\"production\"] button.delete")
        .click();
    browser
        .find("#channel-action button.confirm-delete")
        .click();
    browser.wait_text("#flash", "Deleted channel production");
    browser.wait_text("#main", "No channel.");
    browser.find("#tab-bundles").click();
    browser
        .find("#bundles tr[data-version=\"1.0.1\"] button.delete")
        .click();
    browser.find("#bundle-action button.confirm-delete").click();
    browser.wait_text("#main", "No bundle.");
}

#[test]
fn a_rollout_is_started_watched_and_promoted_from_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let server = seeded_server(dir.path());
    let Some(browser) = Browser::start("console rollout test", 1280, 900) else {
        return;
    };
    sign_in(&browser, &server, ADMIN);
    browser.find("a.app-link").click();
    browser.find("#tab-channels").click();

    // Start: 1.1.0 to half of production's devices (a share outside 0-100 is refused first).
    let panel = "section.rollout[data-channel=\"production\"]";
    browser.wait_text(&format!("{panel} .rollout-state"), "No rollout.");
    browser
        .find(&format!("{panel} .rollout-bundle"))
        .choose("1.1.0");
    let share = browser.find(&format!("{panel} .rollout-share"));
    share.clear();
    share.type_text("150");
    browser.find(&format!("{panel} .rollout-start")).click();
    browser.wait_text(&format!("{panel} .error"), "percentage from 0 to 100");
    let share = browser.find(&format!("{panel} .rollout-share"));
    share.clear();
    share.type_text("50");
    browser.find(&format!("{panel} .rollout-start")).click();
    browser.wait_text("#flash", "Rollout on production started");
    browser.wait_text(&format!("{panel} .rollout-state"), "1.1.0 to 50.00%");

    // The devices check in: about half are selected, as the panel counts.
    for i in 0..DEVICES {
        let body = json!({"app_id": APP, "device_id": format!("d{i:02}"), "platform": platform_of(i),
            "version_name": "1.0.0", "version_build": "1", "plugin_version": "7.0.0",
            "is_emulator": false, "is_prod": true});
        let (status, _) = http(
            server.port,
            "POST",
            "/updates",
            None,
            Some(&body.to_string()),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    after_render(&browser, || browser.find("#tab-channels").click());
    let state = browser.wait_text(&format!("{panel} .rollout-state"), "selected so far");
    let selected: u64 = state
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{state}"));
    assert!((1..DEVICES as u64).contains(&selected), "{state}");
    let summary = call(
        &server,
        "GET",
        &format!("/device/summary?app_id={APP}"),
        Some(ADMIN),
        Value::Null,
    );
    assert_eq!(
        summary["rollouts"][0]["selected"],
        json!(selected),
        "{summary}"
    );

    // Widen to all, pause, resume.
    let share = browser.find(&format!("{panel} .rollout-share"));
    share.clear();
    share.type_text("100");
    browser.find(&format!("{panel} .rollout-set")).click();
    browser.wait_text(&format!("{panel} .rollout-state"), "1.1.0 to 100.00%");
    browser.find(&format!("{panel} .rollout-pause")).click();
    browser.wait_text(&format!("{panel} .rollout-state"), "paused");
    browser.wait_text(&format!("{panel} .rollout-pause"), "Resume");
    browser.find(&format!("{panel} .rollout-pause")).click();
    browser.wait_text(&format!("{panel} .rollout-pause"), "Pause");

    // What devices report about 1.1.0: three installs and a failure, per day.
    for (i, action) in ["set", "set", "set", "update_fail"].iter().enumerate() {
        let body = json!({"app_id": APP, "device_id": format!("d{i:02}"), "action": action,
            "platform": "ios", "version_name": "1.1.0", "version_build": "1",
            "plugin_version": "7.0.0", "is_emulator": false, "is_prod": true});
        let (status, _) =
            http(server.port, "POST", "/stats", None, Some(&body.to_string())).unwrap();
        assert_eq!(status, 200);
    }
    browser.find(&format!("{panel} .rollout-state a")).click();
    let totals = browser.wait_text("#health-totals", "installs");
    assert!(
        totals.contains("0 downloads, 3 installs, 1 failure (update_fail 1): failure rate 25.00% of 4 attempts."),
        "{totals}"
    );
    let days = browser.find("#health tbody").text();
    assert!(days.ends_with("0 3 1 (update_fail 1)"), "{days}");

    // Promote: the channel's bundle becomes 1.1.0, the rollout ends.
    browser.find("#tab-channels").click();
    browser.find(&format!("{panel} .rollout-promote")).click();
    browser.wait_text(&format!("{panel} [role=alert]"), "Promote 1.1.0?");
    browser.find(&format!("{panel} .rollout-confirm")).click();
    browser.wait_text("#flash", "1.1.0 promoted");
    browser.wait_text(&format!("{panel} .rollout-state"), "No rollout.");
    assert!(browser
        .find("#channels tr[data-channel=\"production\"]")
        .text()
        .starts_with("production 1.1.0 yes"));

    // Another rollout, of 1.0.0, aborted: production stays on 1.1.0.
    browser
        .find(&format!("{panel} .rollout-bundle"))
        .choose("1.0.0");
    browser.find(&format!("{panel} .rollout-start")).click();
    browser.wait_text(&format!("{panel} .rollout-state"), "1.0.0 to 1.00%");
    browser.find(&format!("{panel} .rollout-abort")).click();
    browser.find(&format!("{panel} .rollout-confirm")).click();
    browser.wait_text("#flash", "Rollout aborted: production is back on 1.1.0");
    browser.wait_text(&format!("{panel} .rollout-state"), "No rollout.");
    assert_no_markup_ran(&browser);
}
