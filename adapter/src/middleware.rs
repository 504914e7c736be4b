//! Cross-cutting layers: request metrics; the envelope guard that turns any error
//! answer the framework or a layer produced (405, 413, a panic, …) into the error
//! envelope; and detaching writes from the client's connection.

use std::collections::HashSet;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flash_sale_app::error::Chain;

use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::error::envelope_for_status;
use crate::metrics::HTTP_DURATION;

/// Records `flash_sale_http_request_duration_seconds{method,route,status}`. Every
/// label comes from a closed set, so no client can add series: the standard methods
/// (anything else is `other`), the router's own route patterns (`unmatched` when none
/// matched) and the status codes; none is allocated per request.
pub async fn track_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| route_label(p.as_str()));
    let response = next.run(request).await;
    metrics::histogram!(
        HTTP_DURATION,
        "method" => method,
        "route" => route,
        "status" => status_label(response.status()),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A standard method's name, or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// A matched route pattern, kept once for the life of the process (the router's
/// routes are a fixed set, so this holds one string per route).
fn route_label(pattern: &str) -> &'static str {
    static ROUTES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
    if let Some(known) = ROUTES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(pattern)
    {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = routes.get(pattern) {
        return known;
    }
    let leaked: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
    routes.insert(leaked);
    leaked
}

/// A status code as text (every status is three digits, so at most 900 values).
fn status_label(status: StatusCode) -> &'static str {
    static CODES: LazyLock<Vec<String>> =
        LazyLock::new(|| (0..1000).map(|code| format!("{code:03}")).collect());
    CODES[usize::from(status.as_u16()).min(999)].as_str()
}

/// Gives every error answer without a JSON body the error envelope, keeping its
/// headers (`Allow`, `Retry-After`, request id).
///
/// A body refused as too large is not read to its end, so the connection cannot
/// carry another request: the answer says `Connection: close`, and clients do not
/// reuse it.
pub async fn envelope_guard(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let enveloped = envelope_for_status(status).into_response();
    let (new_parts, body) = enveloped.into_parts();
    parts.status = new_parts.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, Body::new(body))
}

/// The longest request target (path and query) the service reads.
pub const MAX_TARGET: usize = 8 * 1024;
/// The most header bytes (names and values) the service reads.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most header lines the service reads.
pub const MAX_HEADERS: usize = 64;

/// Refuses a request whose target or headers are larger than the service reads, with
/// 414 or 431 in the envelope. (The HTTP layer's own limits are set above these, so
/// only a head past them — past 64 KiB or 128 lines — gets hyper's bare 431.)
pub async fn refuse_oversized_head(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_TARGET {
        return envelope_for_status(StatusCode::URI_TOO_LONG).into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return envelope_for_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).into_response();
    }
    next.run(request).await
}

/// The deadline of a request's time budget (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub tokio::time::Instant);

/// Gives every request its time budget: a read that is not answered by then gets 503
/// `UNAVAILABLE`; a write carries the deadline to its use case, which checks it before
/// it consumes anything (so its answer, even late, is always the truth).
pub async fn request_budget(
    State(budget): State<std::time::Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let deadline = tokio::time::Instant::now() + budget;
    request.extensions_mut().insert(Deadline(deadline));
    if !request.method().is_safe() {
        return next.run(request).await;
    }
    let answer = flash_sale_app::budget::within(deadline, next.run(request));
    match tokio::time::timeout_at(deadline, answer).await {
        Ok(response) => response,
        Err(_) => crate::error::ApiError::from(flash_sale_app::AppError::Unavailable(
            "the request ran out of time".into(),
        ))
        .into_response(),
    }
}

/// Runs every state-changing request (anything but GET, HEAD, OPTIONS) in a task of
/// its own, so that a client hanging up cannot stop a write half-way — between a
/// stock reservation and its settlement, or a database commit and the stock ledger.
/// The tasks are tracked in `writes`, so a graceful shutdown waits for them too; each
/// runs within the request's time budget.
pub async fn run_writes_to_completion(
    State(writes): State<TaskTracker>,
    request: Request,
    next: Next,
) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let deadline = request.extensions().get::<Deadline>().map(|d| d.0);
    let write = async move {
        match deadline {
            Some(deadline) => flash_sale_app::budget::within(deadline, next.run(request)).await,
            None => next.run(request).await,
        }
    };
    // The task carries the request's span, so its log lines keep the request id.
    match writes.spawn(write.instrument(Span::current())).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "request task failed");
            envelope_for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    fn app(done: Arc<AtomicBool>, detached: bool) -> Router {
        let router = Router::new().route(
            "/write",
            post(move || {
                let done = done.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    done.store(true, Ordering::SeqCst);
                }
            }),
        );
        if detached {
            router.layer(axum::middleware::from_fn_with_state(
                TaskTracker::new(),
                run_writes_to_completion,
            ))
        } else {
            router
        }
    }

    async fn abandon_after_10ms(router: Router) {
        let request = Request::post("/write")
            .body(Body::empty())
            .expect("request");
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), router.oneshot(request)).await;
        assert!(abandoned.is_err(), "the caller gave up before the answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn a_write_finishes_even_when_its_caller_goes_away() {
        let done = Arc::new(AtomicBool::new(false));
        abandon_after_10ms(app(done.clone(), true)).await;
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn without_the_layer_an_abandoned_write_stops_half_way() {
        let done = Arc::new(AtomicBool::new(false));
        abandon_after_10ms(app(done.clone(), false)).await;
        assert!(
            !done.load(Ordering::SeqCst),
            "the hazard the layer exists for"
        );
    }
}
