//! The sweeper: no placement stays `queued`.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::gateway::{Clock, PlacementGateway};

use super::consumer::{ConsumeReport, PlacementConsumeCmdExe};
use crate::error::{AppError, ErrorCode};

/// The sweeper: runs placements that have been queued for a while through the
/// consumer again (their task may have been lost with a restart), and fails those
/// that are about to pass the 60 s promise, releasing their units.
pub struct PlacementSweepJobExe {
    placements: Arc<dyn PlacementGateway>,
    consumer: Arc<PlacementConsumeCmdExe>,
    clock: Arc<dyn Clock>,
    /// Queued for longer than this: fail.
    give_up_after: Duration,
}

impl PlacementSweepJobExe {
    /// Built from its collaborators.
    pub fn new(
        placements: Arc<dyn PlacementGateway>,
        consumer: Arc<PlacementConsumeCmdExe>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            placements,
            consumer,
            clock,
            give_up_after: Duration::from_secs(45),
        }
    }

    /// One sweep over up to `batch` placements queued for longer than `retry_after`
    /// (zero at start-up: whatever a previous run of this process left); returns how
    /// many it looked at.
    pub async fn execute(&self, batch: usize, retry_after: Duration) -> Result<usize, AppError> {
        let now = self.clock.now();
        let before = now - chrono::Duration::from_std(retry_after).unwrap_or_default();
        let stale = self.placements.queued(before, batch as u64).await?;
        if stale.is_empty() {
            return Ok(0);
        }
        let give_up = now - chrono::Duration::from_std(self.give_up_after).unwrap_or_default();
        let (expired, retry): (Vec<_>, Vec<_>) =
            stale.into_iter().partition(|p| p.created_at < give_up);
        let seen = expired.len() + retry.len();
        let mut report = ConsumeReport::default();
        for placement in &expired {
            self.consumer
                .fail(
                    placement,
                    ErrorCode::Unavailable.as_str(),
                    "the order could not be written in time; the units went back",
                    &mut report,
                )
                .await;
        }
        if !retry.is_empty() {
            tracing::info!(
                count = retry.len(),
                "re-running placements queued for too long"
            );
            self.consumer.consume(retry).await;
        }
        Ok(seen)
    }
}
