//! The web console: a page, a script and a style sheet compiled into the binary, served at
//! `/console` (and `/`, which redirects there). The script talks to the public API with the
//! key the user signs in with, kept in the tab's session storage; the server renders nothing
//! for it and holds no session. Hand-written, without a framework or a build step, so that
//! `cargo build` alone builds it and nothing is fetched from elsewhere at run time.
//!
//! Device fields come from unauthenticated plugins: the script only ever puts them in the page
//! as text (`textContent`, attribute values), never as markup, and the policy below refuses any
//! script but the console's own file, so that markup slipped into a field could not run even if
//! it reached the page.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// No inline script or style, nothing from another origin, not framed by anyone; and no string
/// ever parsed as markup (Trusted Types with no policy: browsers that know them refuse
/// `innerHTML` and its kin outright, a run-time guard on top of the script's own discipline).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
    base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
    trusted-types 'none'";

/// One file of the console, with the validator browsers revalidate it by.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let etag = digest[..12]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>();
        Self {
            body,
            content_type,
            etag: format!("\"{etag}\""),
        }
    }
}

impl Asset {
    /// `If-None-Match` compares weakly (RFC 9110 13.1.2): a proxy that compresses the file
    /// sends the tag back as `W/"..."`; `*` matches any version.
    fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag)
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file of the console: its path, its text, its type. The script is a set of ES modules
/// (`console.js` imports the others), one concern each.
const FILES: [(&str, &str, &str); 11] = [
    ("/console", include_str!("assets/index.html"), HTML),
    (
        "/console/console.css",
        include_str!("assets/console.css"),
        CSS,
    ),
    (
        "/console/console.js",
        include_str!("assets/console.js"),
        JAVASCRIPT,
    ),
    ("/console/api.js", include_str!("assets/api.js"), JAVASCRIPT),
    ("/console/ui.js", include_str!("assets/ui.js"), JAVASCRIPT),
    ("/console/nav.js", include_str!("assets/nav.js"), JAVASCRIPT),
    (
        "/console/devices.js",
        include_str!("assets/devices.js"),
        JAVASCRIPT,
    ),
    (
        "/console/views.js",
        include_str!("assets/views.js"),
        JAVASCRIPT,
    ),
    (
        "/console/registry.js",
        include_str!("assets/registry.js"),
        JAVASCRIPT,
    ),
    (
        "/console/rollouts.js",
        include_str!("assets/rollouts.js"),
        JAVASCRIPT,
    ),
    (
        "/console/charts.js",
        include_str!("assets/charts.js"),
        JAVASCRIPT,
    ),
];

/// The files with their validators, computed once.
static ASSETS: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, body, content_type)| (path, Asset::new(body, content_type)))
        .collect()
});

pub fn configure(cfg: &mut ServiceConfig) {
    // Named after their paths, as the API's resources are, for the request log and metrics;
    // not in the OpenAPI document, which describes the API.
    for (index, &(path, _, _)) in FILES.iter().enumerate() {
        cfg.service(
            web::resource(path)
                .name(path)
                .route(
                    crate::routes::get().to(move |req: HttpRequest| serve(req, &ASSETS[index].1)),
                )
                .default_service(web::to(crate::routes::method_not_allowed)),
        );
    }
    cfg.service(
        web::resource("/")
            .name("/")
            .route(crate::routes::get().to(to_console))
            .default_service(web::to(crate::routes::method_not_allowed)),
    );
}

async fn to_console() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console"))
        .finish()
}

async fn serve(req: HttpRequest, asset: &'static Asset) -> HttpResponse {
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| asset.matches(tags));
    let mut response = match unchanged {
        true => HttpResponse::NotModified(),
        false => HttpResponse::Ok(),
    };
    response
        .insert_header((header::ETAG, asset.etag.as_str()))
        // Revalidated on every load: a new binary's console is used at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    match unchanged {
        true => response.finish(),
        false => response.content_type(asset.content_type).body(asset.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scripts() -> impl Iterator<Item = (&'static str, &'static str)> {
        FILES
            .iter()
            .filter(|(_, _, content_type)| *content_type == JAVASCRIPT)
            .map(|&(path, body, _)| (path, body))
    }

    #[test]
    fn the_script_puts_no_api_data_in_the_page_as_markup() {
        // Every string from the API reaches the page through a text node or an attribute: the
        // script never parses markup or runs strings (the policy's Trusted Types refuse it too).
        let sinks = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "DOMParser",
            "createContextualFragment",
            "srcdoc",
        ];
        for (path, body) in scripts() {
            for sink in sinks {
                assert!(
                    !body.contains(sink),
                    "{path} uses {sink}: render text nodes"
                );
            }
        }
        let (_, page, _) = FILES[0];
        // Loaded from its own files, as the policy requires: no inline script or handler.
        assert_eq!(page.matches("<script").count(), 1);
        assert!(page.contains(r#"<script type="module" src="/console/console.js"></script>"#));
        let handler = page.split(char::is_whitespace).skip(1).any(|rest| {
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            rest.starts_with("on") && name_len > 2 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "an inline event handler in index.html");
    }

    #[test]
    fn every_module_the_script_imports_is_served() {
        for (path, body) in scripts() {
            for import in body.split("from './").skip(1) {
                let file = &import[..import.find('\'').unwrap()];
                let served = format!("/console/{file}");
                assert!(
                    FILES.iter().any(|(path, _, _)| *path == served),
                    "{path} imports {file}, which is not served"
                );
            }
        }
    }

    #[test]
    fn validators_compare_weakly() {
        let script = &ASSETS[2].1;
        let tag = script.etag.clone();
        assert!(script.matches(&tag));
        assert!(script.matches(&format!("W/{tag}")));
        assert!(script.matches(&format!("\"old\", {tag}")));
        assert!(script.matches("*"));
        assert!(!script.matches("\"old\""));
        assert!(!script.matches(&ASSETS[0].1.etag));
    }

    #[test]
    fn validators_differ_between_files() {
        let tags: std::collections::BTreeSet<&str> = ASSETS
            .iter()
            .map(|(_, asset)| asset.etag.as_str())
            .collect();
        assert_eq!(tags.len(), FILES.len());
        assert!(tags.iter().all(|tag| tag.len() == 26));
    }
}
