//! `[server]`: the listener, the time budgets and the connection limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: String,
    /// How long shutdown waits, in all, for in-flight requests, detached writes,
    /// the consumer's batch and the jobs.
    pub shutdown_timeout: HumanDuration,
    /// The time budget of one request: a read past it answers 503; a write that has
    /// not reserved anything yet by then answers 503 with nothing consumed.
    pub request_timeout: HumanDuration,
    /// A connection that has not sent a whole request head this long after its first
    /// byte (or after it connected) is closed.
    pub header_read_timeout: HumanDuration,
    /// A kept-alive connection with no request this long is closed.
    pub idle_timeout: HumanDuration,
    /// Open connections at most; past it the one that has waited longest without a
    /// request being answered is closed to make room (keep it below `ulimit -n`).
    pub max_connections: usize,
}

impl ServerSettings {
    /// The connection limits, refused when one is zero.
    pub fn connection_limits(&self) -> anyhow::Result<crate::serve::ConnectionLimits> {
        anyhow::ensure!(
            !self.header_read_timeout.0.is_zero(),
            "server.header_read_timeout must be more than 0"
        );
        anyhow::ensure!(
            !self.idle_timeout.0.is_zero(),
            "server.idle_timeout must be more than 0"
        );
        anyhow::ensure!(
            self.max_connections > 0,
            "server.max_connections must be at least 1"
        );
        Ok(crate::serve::ConnectionLimits {
            header_read_timeout: self.header_read_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_connections: self.max_connections,
        })
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".to_owned(),
            shutdown_timeout: HumanDuration(Duration::from_secs(10)),
            request_timeout: HumanDuration(Duration::from_secs(5)),
            header_read_timeout: HumanDuration(Duration::from_secs(5)),
            idle_timeout: HumanDuration(Duration::from_secs(30)),
            max_connections: 10_000,
        }
    }
}
