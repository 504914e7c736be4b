//! The stock jobs: warm-up of online products, the periodic reconcile (lasting drift,
//! and layouts a strategy switch could not re-lay yet) and the recovery of holds whose
//! request is gone.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::Chain;
use flash_sale_domain::event::EventStatus;
use flash_sale_domain::gateway::{EventGateway, ProductGateway};
use flash_sale_domain::page::PageRequest;
use flash_sale_domain::product::ProductId;

use super::{Drift, StockService};
use crate::error::AppError;

/// The warm-up job: every product of every online event is in the stock ledger before
/// buyers arrive — at start-up, and again on each run for events that went online
/// elsewhere.
pub struct StockWarmUpJobExe {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    stock: Arc<StockService>,
}

impl StockWarmUpJobExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            events,
            products,
            stock,
        }
    }

    /// Loads what is missing; returns how many products are loaded.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let ids = self.online_products().await?;
        Ok(self.stock.warm(ids).await)
    }

    /// Every product of every online event.
    pub(super) async fn online_products(&self) -> Result<Vec<ProductId>, AppError> {
        let mut ids = Vec::new();
        let mut page = 1;
        loop {
            let request = PageRequest {
                page,
                page_size: 100,
            };
            let events = self.events.list(Some(EventStatus::Online), request).await?;
            for event in &events.items {
                let products = self.products.list_for_event(event.id).await?;
                ids.extend(products.iter().map(|p| p.id));
            }
            if request.offset() + request.limit() >= events.total {
                return Ok(ids);
            }
            page += 1;
        }
    }
}

/// How many times, how far apart, a drift must be seen unchanged before it is repaired.
const DRIFT_SAMPLES: usize = 3;
const DRIFT_SPACING: Duration = Duration::from_millis(250);

/// The periodic reconcile: a product of an online event whose ledger disagrees with
/// the database — the same way, bucket by bucket, over several looks, with in-flight
/// work accounted for — is rewritten from the database; and a layout that a strategy
/// switch asked for but could not re-lay yet is re-laid.
pub struct StockReconcileJobExe {
    warm: StockWarmUpJobExe,
}

impl StockReconcileJobExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            warm: StockWarmUpJobExe::new(events, products, stock),
        }
    }

    /// Re-lays the pending layouts, then checks every product of the online events;
    /// returns how many products it re-laid or repaired.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let mut repaired = self.relay_layouts().await;
        for id in self.warm.online_products().await? {
            if self.lasting_drift(id).await?.is_some() {
                self.warm.stock.reload(id).await?;
                repaired += 1;
            }
        }
        Ok(repaired)
    }

    async fn relay_layouts(&self) -> usize {
        let stock = &self.warm.stock;
        let mut done = 0;
        for (id, count) in stock.wanted_layouts() {
            let current = match self.warm.products.find(id).await {
                Ok(Some(product)) => product.bucket_count.get(),
                Ok(None) => {
                    stock.forget_layout(id);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(product.id = id.0, error = %Chain(&e), "could not read a product to re-lay");
                    continue;
                }
            };
            let result = if current == count {
                Ok(())
            } else {
                stock.rebucket(id, count).await.map(|_| ())
            };
            match result {
                Ok(()) => {
                    stock.layout_done(id, count);
                    if current != count {
                        tracing::info!(
                            product.id = id.0,
                            buckets = count,
                            "stock re-laid for its strategy"
                        );
                        done += 1;
                    }
                }
                Err(e) => tracing::warn!(
                    product.id = id.0,
                    buckets = count,
                    error = %Chain(&e),
                    "could not re-lay the stock for its strategy yet; trying again next run"
                ),
            }
        }
        done
    }

    /// The drift of a loaded product when it is real: seen the same on every one of
    /// several looks, with no return in progress that could explain it.
    async fn lasting_drift(&self, id: ProductId) -> Result<Option<Drift>, AppError> {
        let mut seen: Option<Drift> = None;
        for look in 0..DRIFT_SAMPLES {
            if look > 0 {
                tokio::time::sleep(DRIFT_SPACING).await;
            }
            let Some(check) = self.warm.stock.check(id).await? else {
                return Ok(None);
            };
            let drift = check.drift();
            if drift.is_zero() || drift.uncertain || seen.as_ref().is_some_and(|s| *s != drift) {
                return Ok(None);
            }
            seen = Some(drift);
        }
        Ok(seen)
    }
}

/// The recovery job: ends the holds and returns of online products that have been in
/// progress for longer than their request can live (see [`StockService::recover`]).
pub struct StockRecoveryJobExe {
    warm: StockWarmUpJobExe,
}

impl StockRecoveryJobExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            warm: StockWarmUpJobExe::new(events, products, stock),
        }
    }

    /// One round over the online products; returns how many holds and returns ended.
    /// A product that fails is logged and the others go on.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let mut ended = 0;
        for id in self.warm.online_products().await? {
            match self
                .warm
                .stock
                .recover(id, self.warm.stock.recovery_after)
                .await
            {
                Ok(n) => ended += n,
                Err(e) => {
                    tracing::warn!(product.id = id.0, error = %Chain(&e), "recovery of a product failed; next round");
                }
            }
        }
        Ok(ended)
    }
}
