//! The routers, one per resource, and the layers around them.

pub(crate) mod admin_event;
pub(crate) mod admin_order;
pub(crate) mod admin_product;
pub(crate) mod admin_stream;
pub(crate) mod catalogue;
pub(crate) mod ops;
pub(crate) mod order;
pub(crate) mod pages;
pub(crate) mod placement_events;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::error::ApiError;
use crate::state::AppState;

/// An event stream as the answer: keep-alive comments while it is quiet, and its end
/// when the service stops (so that a shutdown never waits for a watcher).
pub(crate) fn event_stream<S>(state: &AppState, events: S) -> axum::response::Response
where
    S: futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
        + Send
        + 'static,
{
    use axum::response::IntoResponse as _;
    use futures::StreamExt as _;
    let mut stopping = state.stopping.clone();
    let stopped = async move {
        // A dropped sender is a stopped service too.
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    axum::response::sse::Sse::new(events.take_until(stopped))
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response()
}
use crate::{BODY_LIMIT, middleware};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether a client's request id may be kept: 1 to 64 of `[A-Za-z0-9._-]`.
fn fit_request_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops the client's `X-Request-Id` unless there is one and it is fit, so that the
/// next layer makes a fresh one: the id is written into every log line of the request
/// and sent back, and must not be able to forge fields there.
async fn drop_unfit_request_id(mut request: Request) -> Request {
    let mut ids = request.headers().get_all(REQUEST_ID).iter();
    let keep = match (ids.next(), ids.next()) {
        (None, _) => true,
        (Some(id), None) => fit_request_id(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// The whole HTTP API: `/api/v1/…` plus the operations routes, every layer applied.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(admin_event::router())
        .merge(admin_product::router())
        .merge(admin_order::router())
        .merge(catalogue::router())
        .merge(order::router());
    // Only when the limit is on (limits are fixed at start-up): a layer costs every
    // API request a boxed future and a clone of the state even when it lets all through.
    let api = if state.limits.per_ip_enabled() {
        api.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::rate_limit::per_ip,
        ))
    } else {
        api
    };
    Router::new()
        .nest("/api/v1", api)
        .merge(ops::router())
        .merge(pages::router())
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
                .layer(axum::middleware::map_request(drop_unfit_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|request: &Request| {
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
                        })
                        // A 5xx is logged where it is made, with its cause (`ApiError`:
                        // an internal error at ERROR, a dependency at WARN); a shed
                        // placement (503, the queue behind) is an answer, not a fault.
                        // tower-http's default logged each at ERROR once more, without
                        // the cause: a line per refused request in a sale that sheds.
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(axum::middleware::from_fn(middleware::refuse_oversized_head))
                .layer(axum::middleware::from_fn(middleware::envelope_guard))
                .layer(CatchPanicLayer::new())
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT)),
        )
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::fit_request_id;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        for fit in ["a", "abc-123_X.y", &"7".repeat(64)] {
            assert!(fit_request_id(fit.as_bytes()), "{fit}");
        }
        for unfit in [
            "",
            &"7".repeat(65),
            "AAAA status=200 http.path=/api/v1/admin/events",
            "a\"b",
            "id\nnext",
            "é",
        ] {
            assert!(!fit_request_id(unfit.as_bytes()), "{unfit}");
        }
    }
}
