//! Readiness probes: each backend the service depends on says whether it answers.

use async_trait::async_trait;

/// One dependency's readiness check (`/readyz`).
#[async_trait]
pub trait Probe: Send + Sync {
    /// The name in the `checks` map, e.g. `database`.
    fn name(&self) -> &'static str;

    /// `Ok` when the dependency answers.
    ///
    /// # Errors
    /// A short reason, safe to show (no secrets, no driver internals).
    async fn check(&self) -> Result<(), String>;
}
