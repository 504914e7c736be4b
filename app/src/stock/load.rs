//! Loading a product into the stock ledger from the database, and the sink through
//! which every re-lay rewrites the ledger inside its database transaction.

use async_trait::async_trait;
use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{GatewayError, Relay, StockLedger, StockState, StockStateSink};
use flash_sale_domain::product::ProductId;

use super::StockService;
use crate::error::AppError;

/// Rewrites the ledger's copy of one product from the state a re-lay read.
pub(super) struct LedgerSink<'a> {
    pub(super) ledger: &'a dyn StockLedger,
    pub(super) product_id: ProductId,
}

#[async_trait]
impl StockStateSink for LedgerSink<'_> {
    async fn apply(&self, state: &StockState) -> Result<(), GatewayError> {
        self.ledger
            .load(
                self.product_id,
                &state.buckets,
                &state.quotas,
                &state.in_flight,
            )
            .await
    }
}

impl StockService {
    /// Loads the product into the ledger from the database unless it is there: one
    /// loader per process, and across instances under the product's load lock — a
    /// missing product is rebuilt, never taken for sold out or for endless.
    pub async fn ensure_loaded(&self, product_id: ProductId) -> Result<(), AppError> {
        if self.ledger.is_loaded(product_id).await? {
            return Ok(());
        }
        let _one_loader = self.loader.lock().await;
        if self.ledger.is_loaded(product_id).await? {
            return Ok(());
        }
        let lease = self.load_lock(product_id).await?;
        let result = if self.ledger.is_loaded(product_id).await? {
            Ok(())
        } else {
            self.load_from_database(product_id).await
        };
        self.unlock(&lease).await;
        result
    }

    /// Whether the product is in the stock ledger (nothing is loaded by asking).
    pub async fn is_loaded(&self, product_id: ProductId) -> Result<bool, AppError> {
        Ok(self.ledger.is_loaded(product_id).await?)
    }

    async fn load_from_database(&self, product_id: ProductId) -> Result<(), AppError> {
        let sink = LedgerSink {
            ledger: &*self.ledger,
            product_id,
        };
        match self
            .products
            .relay(product_id, Relay::Reload, self.clock.now(), &sink)
            .await
        {
            Ok(_) => {
                tracing::debug!(product.id = product_id.0, "stock loaded into the ledger");
                Ok(())
            }
            Err(GatewayError::NotFound) => Err(AppError::NotFound("product")),
            Err(e) => Err(e.into()),
        }
    }

    /// Loads every product in `ids` that is not loaded yet; a failure is logged and
    /// left for the first order of that product to retry.
    pub async fn warm(&self, ids: Vec<ProductId>) -> usize {
        let mut loaded = 0;
        for id in ids {
            match self.ensure_loaded(id).await {
                Ok(()) => loaded += 1,
                Err(e) => {
                    tracing::warn!(product.id = id.0, error = %Chain(&e), "stock warm-up failed; the first order will load it");
                }
            }
        }
        loaded
    }
}
