//! The consumer: turns queued placements into orders, a batch per transaction.
//!
//! Exactly once: whoever moves a placement out of `queued` (the consumer's claim, in
//! the order's own transaction, or a conditional `queued → failed`) settles its
//! reservation; a retry that finds its own work done settles it the same way
//! (settling twice changes nothing).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{
    Clock, Fulfil, Fulfilled, PlacementGateway, PlacementQueue, Settlement,
};
use flash_sale_domain::placement::{Placement, PlacementStatus};
use flash_sale_domain::product::{PerUserLimit, ProductId};

use crate::catalogue::CatalogueService;
use crate::error::{DomainError, ErrorCode};
use crate::stock::StockService;

/// How the consumer retries a batch the database could not take.
const RETRY_BACKOFF: [Duration; 6] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// What a consumer run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumeReport {
    /// Orders written.
    pub placed: usize,
    /// Placements failed (their units released).
    pub failed: usize,
    /// Placements someone else had resolved already.
    pub duplicates: usize,
    /// Placements left queued (the database stayed down; the sweeper tries again).
    pub left: usize,
}

impl ConsumeReport {
    /// Tasks looked at.
    pub fn total(&self) -> usize {
        self.placed + self.failed + self.duplicates + self.left
    }
}

/// The consumer: turns queued placements into orders, a batch per transaction.
pub struct PlacementConsumeCmdExe {
    placements: Arc<dyn PlacementGateway>,
    queue: Arc<dyn PlacementQueue>,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
    payment_timeout: chrono::Duration,
    backoff: Vec<Duration>,
}

impl PlacementConsumeCmdExe {
    /// Built from its collaborators.
    pub fn new(
        placements: Arc<dyn PlacementGateway>,
        queue: Arc<dyn PlacementQueue>,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
        payment_timeout: Duration,
    ) -> Self {
        Self {
            placements,
            queue,
            catalogue,
            stock,
            clock,
            payment_timeout: chrono::Duration::from_std(payment_timeout)
                .unwrap_or(chrono::Duration::minutes(15)),
            backoff: RETRY_BACKOFF.to_vec(),
        }
    }

    /// Takes up to `max` tasks from the queue (waiting up to `wait` for the first) and
    /// consumes them.
    pub async fn consume_next(&self, max: usize, wait: Duration) -> ConsumeReport {
        let batch = self.queue.next_batch(max, wait).await;
        if batch.is_empty() {
            return ConsumeReport::default();
        }
        self.consume(batch).await
    }

    /// Turns `batch` into orders: one transaction for the batch when every guard
    /// passes; transient failures are retried here with a short backoff, and when
    /// the database stays down the placements fail with their units released.
    #[tracing::instrument(skip_all, fields(batch.size = batch.len()))]
    pub async fn consume(&self, batch: Vec<Placement>) -> ConsumeReport {
        let mut report = ConsumeReport::default();
        let now = self.clock.now();
        let mut items: Vec<(Placement, Fulfil)> = Vec::with_capacity(batch.len());
        let mut limits: HashMap<ProductId, Option<PerUserLimit>> = HashMap::new();
        for placement in batch {
            let limit = if let Some(limit) = limits.get(&placement.product_id) {
                *limit
            } else {
                let limit = match self.catalogue.product(placement.product_id).await {
                    Ok(entry) => entry.map(|e| e.product.per_user_limit),
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "product lookup failed; the placement waits for the sweeper");
                        report.left += 1;
                        continue;
                    }
                };
                limits.insert(placement.product_id, limit);
                limit
            };
            let Some(limit) = limit else {
                self.fail(
                    &placement,
                    ErrorCode::NotFound.as_str(),
                    "the product no longer exists",
                    &mut report,
                )
                .await;
                continue;
            };
            match placement.to_order(now, self.payment_timeout) {
                Ok(order) => items.push((
                    placement,
                    Fulfil {
                        order,
                        limit,
                        unwritten: None,
                    },
                )),
                Err(e) => {
                    let code = DomainError::from(e.clone()).code();
                    self.fail(&placement, code, &e.to_string(), &mut report)
                        .await;
                }
            }
        }
        if items.is_empty() {
            return report;
        }
        let fulfil: Vec<Fulfil> = items.iter().map(|(_, f)| f.clone()).collect();
        let outcomes = timed("write", self.fulfil_with_retries(&fulfil)).await;
        let Some(outcomes) = outcomes else {
            for (placement, _) in &items {
                self.fail(
                    placement,
                    ErrorCode::Unavailable.as_str(),
                    "the order could not be written; the units went back",
                    &mut report,
                )
                .await;
            }
            return report;
        };
        // The holds of the batch end together (with Redis: pipelined on one
        // connection rather than one round trip after another).
        let mut settle = Vec::with_capacity(items.len());
        let now = self.clock.now();
        for ((placement, _), outcome) in items.iter().zip(outcomes) {
            match outcome {
                Fulfilled::Placed => {
                    record_lag(placement, now);
                    settle.push(
                        self.stock
                            .settle_placement(placement, Settlement::Committed),
                    );
                    report.placed += 1;
                }
                Fulfilled::Rejected(e) => {
                    tracing::warn!(error = %Chain(&e), "the database refused what the stock ledger reserved; reconcile if it repeats");
                    let code = DomainError::from(e.clone()).code();
                    self.fail(placement, code, &e.to_string(), &mut report)
                        .await;
                }
                Fulfilled::AlreadyResolved { succeeded } => {
                    // A duplicate, or a retry of a batch whose commit answer was lost:
                    // the hold ends the way the placement did (once, by its token).
                    let settlement = if succeeded {
                        Settlement::Committed
                    } else {
                        Settlement::Released
                    };
                    settle.push(self.stock.settle_placement(placement, settlement));
                    report.duplicates += 1;
                }
            }
        }
        timed("settle", futures::future::join_all(settle)).await;
        metrics::counter!("flash_sale_placements_total", "outcome" => "placed")
            .increment(report.placed as u64);
        metrics::histogram!("flash_sale_placement_batch_size")
            .record(f64::from(u32::try_from(fulfil.len()).unwrap_or(u32::MAX)));
        report
    }

    /// Writes the batch, retrying transient failures with a short backoff; `None` when
    /// the database stayed down.
    async fn fulfil_with_retries(&self, fulfil: &[Fulfil]) -> Option<Vec<Fulfilled>> {
        let mut attempt = 0;
        loop {
            match self.placements.fulfil(fulfil).await {
                Ok(outcomes) => return Some(outcomes),
                Err(e) if attempt < self.backoff.len() => {
                    tracing::warn!(error = %Chain(&e), attempt, "a placement batch failed; retrying");
                    tokio::time::sleep(self.backoff[attempt]).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::error!(error = %Chain(&e), "a placement batch failed for good; failing it");
                    return None;
                }
            }
        }
    }

    /// `queued → failed`, and the units back when this call did it.
    pub(super) async fn fail(
        &self,
        placement: &Placement,
        code: &str,
        message: &str,
        report: &mut ConsumeReport,
    ) {
        match self
            .placements
            .fail(&placement.id, code, message, self.clock.now())
            .await
        {
            Ok(true) => {
                self.stock
                    .settle_placement(placement, Settlement::Released)
                    .await;
                metrics::counter!("flash_sale_placements_total", "outcome" => "failed")
                    .increment(1);
                report.failed += 1;
            }
            Ok(false) => {
                // Already resolved — maybe by an earlier attempt whose answer was lost:
                // its hold ends the way the placement did (settling twice is harmless).
                match self.placements.find(&placement.id).await {
                    Ok(Some(p)) if p.is_resolved() => {
                        let settlement = match p.status {
                            PlacementStatus::Succeeded(_) => Settlement::Committed,
                            _ => Settlement::Released,
                        };
                        self.stock.settle_placement(placement, settlement).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %Chain(&e), "could not read a resolved placement; the recovery job settles its hold");
                    }
                }
                report.duplicates += 1;
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), placement.id = %placement.id, "could not fail a placement; the sweeper tries again");
                report.left += 1;
            }
        }
    }
}

/// Runs one phase of a batch and records how long it took (`write`: the database
/// transaction with its retries; `settle`: the holds ending in the stock ledger).
async fn timed<T>(phase: &'static str, work: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let done = work.await;
    metrics::histogram!("flash_sale_placement_batch_seconds", "phase" => phase)
        .record(started.elapsed().as_secs_f64());
    done
}

/// The consumer's lag: from a placement's 202 to its order written.
fn record_lag(placement: &Placement, now: chrono::DateTime<chrono::Utc>) {
    let lag = (now - placement.created_at).to_std().unwrap_or_default();
    metrics::histogram!("flash_sale_placement_lag_seconds").record(lag.as_secs_f64());
}
