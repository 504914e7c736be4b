//! The routers, one per resource, and the layers around them.

pub(crate) mod admin_event;
pub(crate) mod admin_order;
pub(crate) mod admin_product;
pub(crate) mod catalogue;
pub(crate) mod ops;
pub(crate) mod order;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{BODY_LIMIT, middleware};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP API: `/api/v1/…` plus the operations routes, every layer applied.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(admin_event::router())
        .merge(admin_product::router())
        .merge(admin_order::router())
        .merge(catalogue::router())
        .merge(order::router());
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::rate_limit::per_ip,
    ));
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router())
        .fallback(async || ApiError::not_found("route"))
        .layer(axum::middleware::from_fn_with_state(
            state.writes.clone(),
            middleware::run_writes_to_completion,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.request_timeout,
            middleware::request_budget,
        ))
        .layer(axum::middleware::from_fn(middleware::track_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request| {
                        let request_id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!(
                            "http",
                            http.method = %request.method(),
                            http.path = %request.uri().path(),
                            request.id = %request_id,
                        )
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(axum::middleware::from_fn(middleware::envelope_guard))
                .layer(CatchPanicLayer::new())
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
        )
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
