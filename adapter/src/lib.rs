//! The flash-sale HTTP adapter.
//!
//! axum routers per resource with thin handlers (extract → command → executor →
//! response), JWT auth with roles, extractors whose rejections use the error envelope,
//! the envelope itself, request ids, Prometheus metrics and the OpenAPI document.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod metrics;
mod middleware;
pub mod openapi;
pub mod rate_limit;
mod routes;
mod state;

pub use routes::router;
pub use state::{AppState, Shared};

/// Largest request body accepted, in bytes (64 KiB).
pub const BODY_LIMIT: usize = 64 * 1024;
