//! `async`: reserve, store the placement as `queued` (with Redis, the reservation
//! records it), hand a task to the queue, 202.

use std::sync::Arc;

use async_trait::async_trait;
use flash_sale_domain::Chain;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    Clock, GatewayError, HoldKind, PlacementGateway, PlacementQueue, Settlement, UniqueKey,
};
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId};

use super::{OrderingStrategy, PlaceContext, PlaceOrderOutcome, reserve};
use crate::error::AppError;
use crate::order::placement::{placement_dto, replay_placement};
use crate::stock::StockService;

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
        .await?;
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
