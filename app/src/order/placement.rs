//! The `async` strategy (DESIGN §4): reserve, store the placement as `queued`, hand a
//! task to the queue and answer 202; a consumer writes the orders in batches behind
//! the queue; a sweeper makes sure no placement stays `queued`.
//!
//! Exactly once: whoever moves a placement out of `queued` (the consumer's claim, in
//! the order's own transaction, or a conditional `queued → failed`) settles its
//! reservation; anyone finding it resolved already does nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_client::{PlacementDto, PlacementErrorDto, PlacementStatusDto};
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{
    Clock, Fulfil, Fulfilled, GatewayError, HoldKind, PlacementGateway, PlacementQueue, Settlement,
};
use flash_sale_domain::order::{IdempotencyKey, OrderError, OrderRequest};
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId, PlacementStatus};
use flash_sale_domain::product::{PerUserLimit, ProductId};

use super::place::{OrderingStrategy, PlaceContext, PlaceOrderOutcome};
use crate::Caller;
use crate::catalogue::CatalogueService;
use crate::error::AppError;
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

/// The wire form of a placement.
pub fn placement_dto(p: &Placement) -> PlacementDto {
    let (status, order_id, error) = match &p.status {
        PlacementStatus::Queued => (PlacementStatusDto::Queued, None, None),
        PlacementStatus::Succeeded(order) => (
            PlacementStatusDto::Succeeded,
            Some(order.as_str().to_owned()),
            None,
        ),
        PlacementStatus::Failed { code, message } => (
            PlacementStatusDto::Failed,
            None,
            Some(PlacementErrorDto {
                code: code.clone(),
                message: message.clone(),
            }),
        ),
    };
    PlacementDto {
        id: p.id.as_str().to_owned(),
        product_id: p.product_id.0,
        quantity: p.quantity,
        status,
        order_id,
        error,
    }
}

/// The same key again: the first placement as it is now, or `IDEMPOTENCY_KEY_REUSED`.
pub(crate) fn replay_placement(
    placement: &Placement,
    request: &OrderRequest,
) -> Result<PlaceOrderOutcome, AppError> {
    if placement.request_fingerprint == request.fingerprint() {
        Ok(PlaceOrderOutcome::Accepted(placement_dto(placement)))
    } else {
        Err(AppError::domain(OrderError::IdempotencyKeyReused))
    }
}

/// `async`: the Lua (or in-process) reservation, the placement row, the task → 202.
pub struct AsyncOrdering {
    placements: Arc<dyn PlacementGateway>,
    queue: Arc<dyn PlacementQueue>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
}

impl AsyncOrdering {
    /// A strategy storing placements in `placements` and tasks in `queue`.
    pub fn new(
        placements: Arc<dyn PlacementGateway>,
        queue: Arc<dyn PlacementQueue>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            placements,
            queue,
            stock,
            clock,
        }
    }

    async fn release(&self, placement: &Placement) {
        self.stock
            .settle_placement(placement, Settlement::Released)
            .await;
    }
}

#[async_trait]
impl OrderingStrategy for AsyncOrdering {
    #[tracing::instrument(skip_all, fields(product.id = ctx.product.id.0, order.quantity = ctx.request.quantity))]
    async fn place(&self, ctx: PlaceContext<'_>) -> Result<PlaceOrderOutcome, AppError> {
        let id = PlacementId::generate();
        let allocation =
            super::place::reserve(&self.stock, &ctx, id.as_str(), HoldKind::Placement).await?;
        let placement = Placement::queue(NewPlacement {
            id: id.clone(),
            user_id: ctx.user.clone(),
            event_id: ctx.event.id,
            request: ctx.request,
            allocation: allocation.clone(),
            unit_price: ctx.product.pricing.flash(),
            idempotency_key: ctx.key.cloned(),
            now: self.clock.now(),
        });
        let placement = match placement {
            Ok(p) => p,
            Err(e) => {
                self.stock
                    .settle(
                        ctx.product.id,
                        id.as_str(),
                        &allocation,
                        Settlement::Released,
                    )
                    .await;
                return Err(AppError::domain(e));
            }
        };
        // Stored before it is published, so that a fast consumer always finds it.
        let stored = match self.placements.insert(&placement).await {
            // The insert's answer was lost: is the placement there? Ask first.
            Err(GatewayError::Unavailable(e)) => match super::confirm(|| async {
                Ok(self.placements.find(&placement.id).await?.is_some())
            })
            .await
            {
                Some(true) => Ok(()),
                Some(false) => Err(GatewayError::Unavailable(e)),
                None => {
                    tracing::warn!(placement.id = %placement.id, error = %e, "a placement could not be confirmed; the recovery job settles its hold");
                    return Err(AppError::Unavailable(
                        "the placement could not be confirmed; retry with the same Idempotency-Key to learn its outcome".into(),
                    ));
                }
            },
            other => other,
        };
        if let Err(error) = stored {
            self.release(&placement).await;
            return match (error, ctx.key) {
                (GatewayError::Duplicate("idempotency_key"), Some(key)) => {
                    let first = self
                        .placements
                        .find_by_idempotency_key(ctx.user, key)
                        .await?
                        .ok_or_else(|| {
                            AppError::Unavailable("the first placement is not visible yet".into())
                        })?;
                    replay_placement(&first, &ctx.request)
                }
                (error, _) => Err(error.into()),
            };
        }
        if let Err(error) = self.queue.publish(&placement).await {
            match self.placements.delete(&placement.id).await {
                Ok(true) => {
                    tracing::warn!(%error, placement.id = %placement.id, "publishing a placement failed; released");
                    self.release(&placement).await;
                    return Err(AppError::Unavailable(
                        "the order queue cannot take the request; try again".into(),
                    ));
                }
                // A consumer got the task after all (the broker stored it): accepted.
                Ok(false) => {}
                // The row stays queued and the sweeper runs it: accepted all the same.
                Err(e) => {
                    tracing::warn!(%error, error.delete = %e, placement.id = %placement.id, "publishing failed and the placement stays queued; the sweeper runs it");
                }
            }
        }
        Ok(PlaceOrderOutcome::Accepted(placement_dto(&placement)))
    }
}

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
                        tracing::warn!(error = %e, "product lookup failed; the placement waits for the sweeper");
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
                    "NOT_FOUND",
                    "the product no longer exists",
                    &mut report,
                )
                .await;
                continue;
            };
            match placement.to_order(now, self.payment_timeout) {
                Ok(order) => items.push((placement, Fulfil { order, limit })),
                Err(e) => {
                    let code = flash_sale_domain::DomainError::from(e.clone()).code();
                    self.fail(&placement, code, &e.to_string(), &mut report)
                        .await;
                }
            }
        }
        if items.is_empty() {
            return report;
        }
        let fulfil: Vec<Fulfil> = items.iter().map(|(_, f)| f.clone()).collect();
        let outcomes = self.fulfil_with_retries(&fulfil).await;
        let Some(outcomes) = outcomes else {
            for (placement, _) in &items {
                self.fail(
                    placement,
                    "UNAVAILABLE",
                    "the order could not be written; the units went back",
                    &mut report,
                )
                .await;
            }
            return report;
        };
        for ((placement, _), outcome) in items.iter().zip(outcomes) {
            match outcome {
                Fulfilled::Placed => {
                    self.stock
                        .settle_placement(placement, Settlement::Committed)
                        .await;
                    report.placed += 1;
                }
                Fulfilled::Rejected(e) => {
                    tracing::warn!(error = %e, "the database refused what the stock ledger reserved; reconcile if it repeats");
                    let code = flash_sale_domain::DomainError::from(e.clone()).code();
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
                    self.stock.settle_placement(placement, settlement).await;
                    report.duplicates += 1;
                }
            }
        }
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
                    tracing::warn!(error = %e, attempt, "a placement batch failed; retrying");
                    tokio::time::sleep(self.backoff[attempt]).await;
                    attempt += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "a placement batch failed for good; failing it");
                    return None;
                }
            }
        }
    }

    /// `queued → failed`, and the units back when this call did it.
    async fn fail(
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
                        tracing::warn!(error = %e, "could not read a resolved placement; the recovery job settles its hold");
                    }
                }
                report.duplicates += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, placement.id = %placement.id, "could not fail a placement; the sweeper tries again");
                report.left += 1;
            }
        }
    }
}

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
                    "UNAVAILABLE",
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

/// `GET /placements/{id}`: the caller's own placement. A resolved placement never
/// changes again, so it is cached in process; a queued one is read by primary key.
pub struct PlacementGetQryExe {
    placements: Arc<dyn PlacementGateway>,
    resolved: moka::future::Cache<PlacementId, Arc<Placement>>,
}

impl PlacementGetQryExe {
    /// Reads from `placements`.
    pub fn new(placements: Arc<dyn PlacementGateway>) -> Self {
        Self {
            placements,
            resolved: moka::future::Cache::builder()
                .name("placements.resolved")
                .max_capacity(100_000)
                .time_to_live(Duration::from_mins(5))
                .build(),
        }
    }

    /// The placement, if it is the caller's.
    pub async fn execute(&self, caller: &Caller, id: &str) -> Result<PlacementDto, AppError> {
        let id = PlacementId::parse(id).ok_or(AppError::NotFound("placement"))?;
        let placement = match self.resolved.get(&id).await {
            Some(cached) => Some(cached),
            None => {
                let found = self.placements.find(&id).await?.map(Arc::new);
                if let Some(p) = found.as_ref().filter(|p| p.is_resolved()) {
                    self.resolved.insert(id, p.clone()).await;
                }
                found
            }
        };
        placement
            .filter(|p| p.user_id == caller.user_id)
            .map(|p| placement_dto(&p))
            .ok_or(AppError::NotFound("placement"))
    }
}

/// The replay of a keyed request that made a placement: `None` when there is none.
pub(crate) async fn placement_replay(
    placements: &Arc<dyn PlacementGateway>,
    user: &UserId,
    key: &IdempotencyKey,
    request: &OrderRequest,
) -> Result<Option<Result<PlaceOrderOutcome, AppError>>, AppError> {
    Ok(placements
        .find_by_idempotency_key(user, key)
        .await?
        .map(|p| replay_placement(&p, request)))
}
