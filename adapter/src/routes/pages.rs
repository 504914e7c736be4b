//! Pages for people, served by the binary with everything they load embedded at
//! compile time (no CDN, no build step; they work offline): the interactive API
//! documentation at `/docs` and the admin console at `/console`.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/docs", get(docs))
        .route("/docs/", get(docs))
        .route("/docs/{*file}", get(docs_file))
        .route("/console", get(console))
        .route("/console/{file}", get(console_asset))
}

/// Interactive API documentation (Swagger UI) over `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "operations", operation_id = "docs",
    responses((status = 200, description = "the Swagger UI page over `/openapi.json`; its scripts and styles are served from `/docs/…`", content_type = "text/html")))]
pub(crate) async fn docs() -> Response {
    docs_file(Path("index.html".to_owned())).await
}

static SWAGGER: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["/openapi.json"])
            .display_operation_id(true)
            .try_it_out_enabled(true)
            // No badge fetched from swagger.io: nothing leaves this service.
            .validator_url("none"),
    )
});

async fn docs_file(Path(file): Path<String>) -> Response {
    match utoipa_swagger_ui::serve(&file, SWAGGER.clone()) {
        Ok(Some(found)) => {
            let mut bytes = found.bytes.into_owned();
            if file == "index.html" {
                // Its files are named relative to `/docs/`; the page is also `/docs`.
                bytes = String::from_utf8_lossy(&bytes)
                    .replace("\"./", "\"/docs/")
                    .into_bytes();
            }
            let mut response = bytes.into_response();
            if let Ok(kind) = HeaderValue::from_str(&found.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, kind);
            }
            response
        }
        Ok(None) => ApiError::not_found("route").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "the Swagger UI configuration did not render");
            crate::error::envelope_for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

/// The console's files: (name, content type, bytes).
const CONSOLE: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../console/console.css"),
    ),
];

/// Everything the console loads comes from this service; nothing inline runs.
const CONSOLE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// The admin console: sign in with an admin token, watch products sell live, act on them.
#[utoipa::path(get, path = "/console", tag = "operations", operation_id = "console",
    responses((status = 200, description = "the admin console (HTML); it signs in with an admin token and uses the admin API and `GET /api/v1/admin/stream`", content_type = "text/html")))]
pub(crate) async fn console() -> Response {
    console_file("index.html")
}

async fn console_asset(Path(file): Path<String>) -> Response {
    console_file(&file)
}

fn console_file(name: &str) -> Response {
    let Some((_, kind, body)) = CONSOLE.iter().find(|(file, _, _)| *file == name) else {
        return ApiError::not_found("route").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *kind),
            (header::CONTENT_SECURITY_POLICY, CONSOLE_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        *body,
    )
        .into_response()
}
