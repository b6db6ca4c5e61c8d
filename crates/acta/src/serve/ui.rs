//! The web UI: a handful of static files compiled into the binary, served at `/` and `/ui/<name>`.
//!
//! The files live beside this module (`ui/`): hand-written HTML, CSS and JavaScript modules, no
//! build step. A request names an asset by its exact name in [`ASSETS`]; nothing is read from the
//! file system, so no path can reach anything else. Every answer carries a strict
//! Content-Security-Policy (scripts, styles and requests to this origin only, no inline script,
//! no framing), `nosniff`, and an ETag so a browser revalidates cheaply and never keeps a stale
//! UI after an upgrade.
//!
//! The UI itself holds no secret: it asks for a token, keeps it in the browser session's storage
//! and sends it as `Authorization: Bearer` to the `/api/v1` routes, which check it.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI; `index.html` is also the answer to `/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("ui/index.html"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("ui/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("ui/favicon.svg"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        bytes: include_bytes!("ui/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        bytes: include_bytes!("ui/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        bytes: include_bytes!("ui/dom.js"),
    },
    Asset {
        name: "chart.js",
        content_type: JS,
        bytes: include_bytes!("ui/chart.js"),
    },
    Asset {
        name: "dashboard.js",
        content_type: JS,
        bytes: include_bytes!("ui/dashboard.js"),
    },
    Asset {
        name: "search.js",
        content_type: JS,
        bytes: include_bytes!("ui/search.js"),
    },
    Asset {
        name: "event.js",
        content_type: JS,
        bytes: include_bytes!("ui/event.js"),
    },
    Asset {
        name: "alerts.js",
        content_type: JS,
        bytes: include_bytes!("ui/alerts.js"),
    },
];

/// The ETag of each asset, in the order of [`ASSETS`]: a hash of its bytes.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.bytes);
            let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// The policy of every UI answer: this origin only, no inline script or style element, no
/// plug-ins, never framed. Styles set from script through the DOM (`el.style.x = …`) are not
/// inline styles and stay allowed; `data:` images cover nothing but the SVG favicon fallback.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The UI's routes: `GET /` and `GET /ui/<asset>`.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{name}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        let body = serde_json::json!({"error": {
            "code": "not_found",
            "message": format!("no UI file named `{name}`"),
        }});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let (Some(asset), Some(etag)) = (ASSETS.get(i), ETAGS.get(i)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidated on every load (a 304 when unchanged), so an upgraded binary's UI is used at
    // once; answers that may carry data are never stored, and these carry none.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// Every module the UI imports is an asset, so none is a 404 in the browser.
    #[test]
    fn every_import_and_link_is_an_asset() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for a in ASSETS {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for quote in ["\"", "'"] {
                for part in text.split(&format!("from {quote}./")).skip(1) {
                    let target = part.split(quote).next().unwrap();
                    assert!(names.contains(&target), "{} imports {target}", a.name);
                }
            }
            for part in text.split("/ui/").skip(1) {
                let target: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                assert!(
                    names.contains(&target.as_str()),
                    "{} links {target}",
                    a.name
                );
            }
        }
    }

    #[test]
    fn names_are_matched_exactly() {
        let h = HeaderMap::new();
        assert_eq!(serve("app.js", &h).status(), StatusCode::OK);
        for bad in [
            "../mod.rs",
            "app.js/",
            "APP.JS",
            "",
            "ui/app.js",
            "%2e%2e%2fmod.rs",
        ] {
            assert_eq!(serve(bad, &h).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[test]
    fn an_unchanged_asset_is_not_sent_again() {
        let first = serve("app.css", &HeaderMap::new());
        let etag = first.headers()[header::ETAG].clone();
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(serve("app.css", &h).status(), StatusCode::NOT_MODIFIED);
    }
}
