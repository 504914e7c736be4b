//! Reserving units and quota, and settling a reservation exactly once.

use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{HoldKind, Reservation, ReserveRequest, Settlement};
use flash_sale_domain::product::{ProductError, ProductId};

use super::{SUSPEND_PATIENCE, StockService};
use crate::error::AppError;

impl StockService {
    /// Reserves units and quota, loading the product first if needed and waiting
    /// briefly while it is suspended. A `SOLD_OUT` with nothing left sets the
    /// product's sold-out flag, unless units came back while it was on its way. A
    /// placement the ledger refuses because the queue is behind
    /// ([`Reservation::Backlogged`]) makes this instance refuse placements by itself
    /// for [`SHED_FOR`](super::SHED_FOR), without a round trip, so that shedding load
    /// does not load the ledger every instance shares.
    pub async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, AppError> {
        let placement = request.kind == HoldKind::Placement;
        if placement && let Some(lag) = self.queue_behind.get(&()) {
            return Ok(Reservation::Backlogged { lag });
        }
        let patience = tokio::time::Instant::now() + SUSPEND_PATIENCE;
        let deadline = crate::budget::deadline().map_or(patience, |d| d.min(patience));
        loop {
            let epoch = self.epoch(request.product_id);
            match self.ledger.reserve(request).await? {
                Reservation::NotLoaded => self.ensure_loaded(request.product_id).await?,
                Reservation::Suspended => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(AppError::domain(ProductError::Suspended));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Reservation::SoldOut { left: 0 } => {
                    self.flag_sold_out(request.product_id, epoch);
                    return Ok(Reservation::SoldOut { left: 0 });
                }
                Reservation::Backlogged { lag } if placement => {
                    self.queue_behind.insert((), lag);
                    return Ok(Reservation::Backlogged { lag });
                }
                other => return Ok(other),
            }
        }
    }

    /// Whether a placement's reservation records the placement too (then it gets no row
    /// until it resolves).
    pub fn records_placements(&self) -> bool {
        self.ledger.records_placements()
    }

    /// Ends a reservation; a failure is logged and left for the recovery job (which
    /// asks the database what became of the hold).
    pub async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        allocation: &Allocation,
        settlement: Settlement,
    ) {
        if let Err(e) = self
            .ledger
            .settle(product_id, token, allocation, settlement)
            .await
        {
            tracing::error!(product.id = product_id.0, error = %Chain(&e), "could not settle a reservation; the recovery job will");
        }
        if settlement == Settlement::Released {
            self.clear_sold_out(product_id).await;
        }
    }

    /// Ends a placement's reservation.
    pub async fn settle_placement(
        &self,
        placement: &flash_sale_domain::placement::Placement,
        settlement: Settlement,
    ) {
        self.settle(
            placement.product_id,
            placement.id.as_str(),
            &placement.allocation,
            settlement,
        )
        .await;
    }
}
