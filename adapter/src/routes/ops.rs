//! Operations routes at the root: liveness, readiness, metrics, the OpenAPI document.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flash_sale_client::{ErrorBody, ErrorCode};
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::state::AppState;

/// How long one readiness check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// Liveness: touches nothing.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "ok", content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: every backend answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "every dependency answers"),
              (status = 503, body = ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let checks = futures_checks(&state).await;
    if checks.values().all(|v| v == "ok") {
        (
            StatusCode::OK,
            Json(serde_json::json!({ "status": "ok", "checks": checks })),
        )
            .into_response()
    } else {
        let mut body = ErrorBody::new(ErrorCode::Unavailable, "a dependency does not answer");
        body.checks = Some(checks);
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

async fn futures_checks(state: &AppState) -> BTreeMap<String, String> {
    let mut checks = BTreeMap::new();
    for probe in state.probes.iter() {
        let status = match tokio::time::timeout(PROBE_TIMEOUT, probe.check()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(why)) => why,
            Err(_) => "timed out".to_owned(),
        };
        checks.insert(probe.name().to_owned(), status);
    }
    checks
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "the OpenAPI 3 document")))]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
