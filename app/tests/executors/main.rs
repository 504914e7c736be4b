//! The application layer's executors against mocked ports (mockall, the domain
//! crate's `mock` feature): which calls they make, in which order, and what they do
//! when a port fails — the paths end-to-end tests reach only with fault injection.
//! No server, no database: `cargo test -p flash-sale-app` runs them in seconds
//! (time is paused where an executor waits or retries).

mod consumer;
mod place_order;
mod relay;
mod returns;
mod support;
