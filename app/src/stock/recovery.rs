//! Every hold ends: the recovery of holds and returns whose request is gone (a crash,
//! a lost reply, a dropped task). Age only picks the candidates; the database decides
//! what each became.

use std::time::Duration;

use flash_sale_domain::gateway::{HoldKind, Settlement};
use flash_sale_domain::placement::{PlacementId, PlacementStatus};
use flash_sale_domain::product::ProductId;

use super::StockService;
use crate::error::AppError;

impl StockService {
    /// Ends the product's holds and returns in progress for longer than `after`:
    /// a hold whose order is written is committed; a sync order's hold with no order,
    /// or a placement's that failed or never became a row, is released; a queued
    /// placement's is left to the consumer (and its sweeper). A stuck return is
    /// dropped — what it did is in the database, and the reconcile rewrites the ledger
    /// from there if it differs. Returns how many it ended.
    pub async fn recover(&self, product_id: ProductId, after: Duration) -> Result<usize, AppError> {
        let Some(check) = self.check(product_id).await? else {
            return Ok(0);
        };
        let mut ended = 0;
        for hold in check.view.holds.iter().filter(|h| h.age >= after) {
            let settlement = if check.committed.contains(&hold.token) {
                Some(Settlement::Committed)
            } else {
                match hold.kind {
                    HoldKind::Order => Some(Settlement::Released),
                    HoldKind::Placement => {
                        let placement = match PlacementId::parse(&hold.token) {
                            Some(id) => self.placements.find(&id).await?,
                            None => None,
                        };
                        match placement.map(|p| p.status) {
                            Some(PlacementStatus::Queued) => None,
                            Some(PlacementStatus::Succeeded(_)) => Some(Settlement::Committed),
                            Some(PlacementStatus::Failed { .. }) | None => {
                                Some(Settlement::Released)
                            }
                        }
                    }
                }
            };
            if let Some(settlement) = settlement {
                tracing::warn!(
                    product.id = product_id.0,
                    hold.token = %hold.token,
                    ?settlement,
                    age_ms = u64::try_from(hold.age.as_millis()).unwrap_or(u64::MAX),
                    "recovered a hold whose request is gone"
                );
                self.ledger
                    .settle(product_id, &hold.token, &hold.allocation, settlement)
                    .await?;
                if settlement == Settlement::Released {
                    self.clear_sold_out(product_id).await;
                }
                ended += 1;
            }
        }
        for stuck in check.view.returns.iter().filter(|r| r.age >= after) {
            tracing::warn!(
                product.id = product_id.0,
                return.token = %stuck.token,
                "dropped a return whose request is gone; reconcile checks the buckets"
            );
            self.ledger
                .finish_return(product_id, &stuck.token, &[], None)
                .await?;
            ended += 1;
        }
        Ok(ended)
    }
}
