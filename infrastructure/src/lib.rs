//! Gateway implementations, named by technology.
//!
//! - [`db`]: sea-orm over SQLite, MariaDB/MySQL or PostgreSQL (chosen by URL), with the
//!   migrations and every `SeaOrm…Gateway`.
//! - [`embedded`]: in-process implementations for the no-server default.
//! - [`redis`]: the stock ledger (Lua), locks, shared cache and notice bus on Redis.
//! - [`rocketmq`]: the async strategy's task queue on Apache RocketMQ.
//! - [`clock`]: the system clock.
//!
//! Group commit and batched broker sends share one batcher (`batching`).
#![forbid(unsafe_code)]
// The RocketMQ client's futures nest deeply (as its own examples note).
#![recursion_limit = "512"]

mod batching;
pub mod clock;
pub mod db;
pub mod embedded;
pub mod redis;
pub mod rocketmq;
mod task;
