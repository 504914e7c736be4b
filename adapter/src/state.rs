//! The state every handler shares.

use std::sync::Arc;

use flash_sale_app::Executors;
use flash_sale_app::probe::Probe;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::JwtAuth;
use crate::rate_limit::RateLimits;

/// Shared by every handler, extracted with `State`: one reference-counted pointer, so
/// that the clones axum makes of it for every request (one per route service, one per
/// `State` extractor and per middleware holding it) cost one atomic increment each, not
/// one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state over `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// Every use case.
    pub exec: Arc<Executors>,
    /// Token verification.
    pub auth: Arc<JwtAuth>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// `/readyz` checks.
    pub probes: Arc<Vec<Arc<dyn Probe>>>,
    /// Optional rate limits.
    pub limits: Arc<RateLimits>,
    /// The writes running to completion in tasks of their own (a graceful shutdown
    /// waits for them).
    pub writes: tokio_util::task::TaskTracker,
    /// The time budget of one request.
    pub request_timeout: std::time::Duration,
    /// Turns true when the service stops: long answers (event streams) end then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}
