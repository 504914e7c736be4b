//! `async`: reserve, store the placement as `queued` (with Redis, the reservation
//! records it), hand a task to the queue, 202.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flash_sale_domain::Chain;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    Clock, GatewayError, HoldKind, PlacementGateway, PlacementQueue, Settlement, UniqueKey,
};
use flash_sale_domain::order::OrderError;
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId};

use super::{OrderingStrategy, PlaceContext, PlaceOrderOutcome, reserve};
use crate::error::AppError;
use crate::order::placement::{placement_dto, replay_placement};
use crate::stock::StockService;

/// How long an instance refuses placements by itself once the ledger said the queue
/// is behind, before it asks again: a refusal then costs no round trip, so shedding
/// load leaves the machine to the consumers that clear the backlog.
const SHED_FOR: Duration = Duration::from_millis(100);

/// `async`: the Lua (or in-process) reservation, the placement row, the task → 202.
pub struct AsyncOrdering {
    placements: Arc<dyn PlacementGateway>,
    queue: Arc<dyn PlacementQueue>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
    behind: Behind,
}

/// The queue was last seen behind: until when (ms from `origin`) placements are
/// refused here, and by how much it was behind.
struct Behind {
    origin: Instant,
    until_ms: AtomicU64,
    lag_ms: AtomicU64,
}

impl Default for Behind {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
        }
    }
}

impl Behind {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The refusal to answer now, if the queue was seen behind a moment ago.
    fn refusal(&self) -> Option<AppError> {
        (self.now_ms() < self.until_ms.load(Ordering::Relaxed)).then(|| {
            let lag = Duration::from_millis(self.lag_ms.load(Ordering::Relaxed));
            AppError::domain(OrderError::QueueBehind { lag })
        })
    }

    /// Notes a refusal of the ledger's: refuse here for [`SHED_FOR`].
    fn seen(&self, error: &AppError) {
        if let AppError::Domain(flash_sale_domain::DomainError::Order(OrderError::QueueBehind {
            lag,
        })) = error
        {
            self.lag_ms.store(
                u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            let until = self.now_ms() + u64::try_from(SHED_FOR.as_millis()).unwrap_or(0);
            self.until_ms.store(until, Ordering::Relaxed);
        }
    }
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
            behind: Behind::default(),
        }
    }

    /// Stores a placement as a row before it is published, so that a fast consumer
    /// always finds it; the first placement's answer when the key was used already.
    async fn store(
        &self,
        placement: &Placement,
        ctx: &PlaceContext<'_>,
    ) -> Result<Option<PlaceOrderOutcome>, AppError> {
        let stored = match self.placements.insert(placement).await {
            // The insert's answer was lost: is the placement there? Ask first.
            Err(GatewayError::Unavailable(e)) => match crate::order::confirm(|| async {
                Ok(self.placements.find(&placement.id).await?.is_some())
            })
            .await
            {
                Some(true) => Ok(()),
                Some(false) => Err(GatewayError::Unavailable(e)),
                None => {
                    tracing::warn!(placement.id = %placement.id, error = %Chain(&e), "a placement could not be confirmed; the recovery job settles its hold");
                    return Err(AppError::Unavailable(
                        "the placement could not be confirmed; retry with the same Idempotency-Key to learn its outcome".into(),
                    ));
                }
            },
            other => other,
        };
        let Err(error) = stored else {
            return Ok(None);
        };
        self.release(placement).await;
        match (error, ctx.key) {
            (GatewayError::Duplicate(UniqueKey::IdempotencyKey), Some(key)) => {
                let first = self
                    .placements
                    .find_by_idempotency_key(ctx.user, key)
                    .await?
                    .ok_or_else(|| {
                        AppError::Unavailable("the first placement is not visible yet".into())
                    })?;
                replay_placement(&first, &ctx.request).map(Some)
            }
            (error, _) => Err(error.into()),
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
        if let Some(refusal) = self.behind.refusal() {
            return Err(refusal);
        }
        let id = PlacementId::generate();
        // Built (and its price checked) before anything is reserved; the reservation
        // chooses its units.
        let mut placement = Placement::queue(NewPlacement {
            id: id.clone(),
            user_id: ctx.user.clone(),
            event_id: ctx.event.id,
            request: ctx.request,
            allocation: Allocation::single(0, ctx.request.quantity),
            unit_price: ctx.product.pricing.flash(),
            idempotency_key: ctx.key.cloned(),
            now: self.clock.now(),
        })
        .map_err(AppError::domain)?;
        // With Redis the reservation records the placement itself: nothing to store.
        let recorded = self.stock.records_placements();
        placement.allocation = reserve(
            &self.stock,
            &ctx,
            id.as_str(),
            HoldKind::Placement,
            recorded.then_some(&placement),
        )
        .await
        .inspect_err(|e| self.behind.seen(e))?;
        if !recorded && let Some(answer) = self.store(&placement, &ctx).await? {
            return Ok(answer);
        }
        if let Err(error) = self.queue.publish(&placement).await {
            match self.placements.delete(&placement.id).await {
                Ok(true) => {
                    tracing::warn!(error = %Chain(&error), placement.id = %placement.id, "publishing a placement failed; released");
                    self.release(&placement).await;
                    return Err(AppError::Unavailable(
                        "the order queue cannot take the request; try again".into(),
                    ));
                }
                // A consumer got the task after all (the broker stored it): accepted.
                Ok(false) => {}
                // The row stays queued and the sweeper runs it: accepted all the same.
                Err(e) => {
                    tracing::warn!(error = %Chain(&error), error.delete = %Chain(&e), placement.id = %placement.id, "publishing failed and the placement stays queued; the sweeper runs it");
                }
            }
        }
        Ok(PlaceOrderOutcome::Accepted(placement_dto(&placement)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag_of(error: Option<AppError>) -> Option<Duration> {
        match error? {
            AppError::Domain(flash_sale_domain::DomainError::Order(OrderError::QueueBehind {
                lag,
            })) => Some(lag),
            other => panic!("not a queue refusal: {other:?}"),
        }
    }

    #[test]
    fn a_queue_seen_behind_is_refused_here_for_a_moment_then_asked_again() {
        let b = Behind::default();
        assert!(b.refusal().is_none(), "nothing seen yet");
        b.seen(&AppError::domain(OrderError::SoldOut));
        assert!(b.refusal().is_none(), "other refusals change nothing");
        b.seen(&AppError::domain(OrderError::QueueBehind {
            lag: Duration::from_millis(5_300),
        }));
        assert_eq!(lag_of(b.refusal()), Some(Duration::from_millis(5_300)));
        std::thread::sleep(SHED_FOR + Duration::from_millis(20));
        assert!(
            b.refusal().is_none(),
            "after the window the ledger is asked"
        );
    }
}
