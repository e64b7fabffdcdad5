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

static PAGE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("assets/index.html"),
        "text/html; charset=utf-8",
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("assets/console.js"),
        "text/javascript; charset=utf-8",
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("assets/console.css"),
        "text/css; charset=utf-8",
    )
});

pub fn configure(cfg: &mut ServiceConfig) {
    // Named after their paths, as the API's resources are, for the request log and metrics;
    // not in the OpenAPI document, which describes the API.
    let page = |path: &'static str, asset: &'static LazyLock<Asset>| {
        web::resource(path)
            .name(path)
            .route(crate::routes::get().to(move |req: HttpRequest| serve(req, asset)))
            .default_service(web::to(crate::routes::method_not_allowed))
    };
    cfg.service(page("/console", &PAGE))
        .service(page("/console/console.js", &SCRIPT))
        .service(page("/console/console.css", &STYLE))
        .service(
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

async fn serve(req: HttpRequest, asset: &'static LazyLock<Asset>) -> HttpResponse {
    let asset: &Asset = asset;
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

    #[test]
    fn the_script_puts_no_api_data_in_the_page_as_markup() {
        // Every string from the API reaches the page through `textContent` or an attribute:
        // the script never parses markup.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(
                !SCRIPT.body.contains(sink),
                "console.js uses {sink}: render text with textContent"
            );
        }
        // Loaded from its own file, as the policy requires: no inline script or handler.
        assert!(!PAGE.body.contains("<script>"));
        let handler = PAGE.body.split(" on").skip(1).any(|rest| {
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "an inline event handler in index.html");
    }

    #[test]
    fn validators_compare_weakly() {
        let tag = SCRIPT.etag.clone();
        assert!(SCRIPT.matches(&tag));
        assert!(SCRIPT.matches(&format!("W/{tag}")));
        assert!(SCRIPT.matches(&format!("\"old\", {tag}")));
        assert!(SCRIPT.matches("*"));
        assert!(!SCRIPT.matches("\"old\""));
        assert!(!SCRIPT.matches(&PAGE.etag));
    }

    #[test]
    fn validators_differ_between_files() {
        assert_ne!(PAGE.etag, SCRIPT.etag);
        assert_ne!(SCRIPT.etag, STYLE.etag);
        assert_eq!(PAGE.etag.len(), 26);
    }
}
