//! Returns of units — cancel, expiry, stock changes — bracketed in the ledger: the
//! return is announced, written to the database, then finished with what the database
//! says it did (the buckets its order names when the return commits).

use std::time::Duration;

use chrono::{DateTime, Utc};
use flash_sale_domain::Chain;
use flash_sale_domain::DomainError;
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{GatewayError, Release};
use flash_sale_domain::order::{Order, OrderId};
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::BucketDelta;

use super::{SUSPEND_PATIENCE, StockService};

/// How long a release waits before each retry when the database could not answer.
const RELEASE_RETRIES: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(700),
    Duration::from_millis(1500),
];
use crate::error::AppError;

fn suspended(error: &GatewayError) -> bool {
    matches!(
        error,
        GatewayError::Rejected(DomainError::Product(ProductError::Suspended))
    )
}

impl StockService {
    /// Announces a return, loading the product first and waiting while it is
    /// suspended.
    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<(), AppError> {
        let deadline = tokio::time::Instant::now() + SUSPEND_PATIENCE;
        loop {
            match self.ledger.begin_return(product_id, token).await {
                Ok(true) => return Ok(()),
                Ok(false) => self.ensure_loaded(product_id).await?,
                Err(e) if suspended(&e) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(AppError::domain(ProductError::Suspended));
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn finish_return(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) {
        if let Err(e) = self
            .ledger
            .finish_return(product_id, token, deltas, quota)
            .await
        {
            tracing::error!(product.id = product_id.0, error = %Chain(&e), "could not finish a return; reconcile will repair it");
        }
        if deltas.iter().any(|d| d.delta > 0) {
            self.clear_sold_out(product_id).await;
        }
    }

    /// Cancels or expires a pending order: the database first (exactly once, with the
    /// order's row locked), then the ledger, each bucket of the order as the database
    /// has it. The order as released, or `None` when it was no longer pending.
    ///
    /// When the database cannot answer, the release is tried again with the same
    /// token for a few seconds (a retry recognises its own earlier commit). If it still
    /// cannot tell, the return stays announced — the recovery job drops it and the
    /// reconcile rewrites the ledger from whatever the database holds — and the error
    /// is returned.
    pub async fn release_order(
        &self,
        product_id: ProductId,
        id: &OrderId,
        release: Release,
        now: DateTime<Utc>,
    ) -> Result<Option<Order>, AppError> {
        // One token per attempt: the database makes the release exactly-once; the token
        // makes each attempt's ledger return apply at most once (two racing cancels of
        // one order must not consume each other's token).
        let token = format!("release:{id}:{}", uuid::Uuid::now_v7());
        self.begin_return(product_id, &token).await?;
        let mut result = self.orders.release(id, release, now, &token).await;
        for pause in RELEASE_RETRIES {
            match &result {
                Err(GatewayError::Unavailable(_)) => {
                    tokio::time::sleep(pause).await;
                    result = self.orders.release(id, release, now, &token).await;
                }
                _ => break,
            }
        }
        match &result {
            Ok(Some(order)) => {
                self.finish_return(
                    product_id,
                    &token,
                    &order.allocation.deltas(1),
                    Some((&order.user_id, order.quantity)),
                )
                .await;
            }
            // The outcome is unknown: leave the return announced for the recovery job.
            Err(GatewayError::Unavailable(e)) => {
                tracing::warn!(order.id = %id, error = %Chain(e), "a release could not be confirmed; its return stays open for the recovery job");
            }
            _ => self.finish_return(product_id, &token, &[], None).await,
        }
        Ok(result?)
    }

    /// Adds units: the database first, then the ledger.
    pub async fn add_units<T>(
        &self,
        product_id: ProductId,
        plan: &[BucketDelta],
        write: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        let token = format!("stock:{}", uuid::Uuid::now_v7());
        self.begin_return(product_id, &token).await?;
        let result = write.await;
        let applied: &[BucketDelta] = if result.is_ok() { plan } else { &[] };
        self.finish_return(product_id, &token, applied, None).await;
        result
    }

    /// Removes unsold units: out of the ledger first (so nobody reserves them
    /// meanwhile), then the database; back into the ledger if the database refuses.
    /// `Ok(None)` when the ledger no longer holds that many in those buckets.
    pub async fn remove_units<T>(
        &self,
        product_id: ProductId,
        plan: &[BucketDelta],
        write: impl Future<Output = Result<T, AppError>>,
    ) -> Result<Option<T>, AppError> {
        let token = format!("stock:{}", uuid::Uuid::now_v7());
        self.begin_return(product_id, &token).await?;
        match self.ledger.take(product_id, plan).await {
            Ok(true) => {}
            Ok(false) => {
                self.finish_return(product_id, &token, &[], None).await;
                return Ok(None);
            }
            Err(e) => {
                self.finish_return(product_id, &token, &[], None).await;
                return Err(e.into());
            }
        }
        let result = write.await;
        let give_back: Vec<BucketDelta> = if result.is_ok() {
            Vec::new()
        } else {
            plan.iter()
                .map(|d| BucketDelta {
                    bucket_no: d.bucket_no,
                    delta: -d.delta,
                })
                .collect()
        };
        self.finish_return(product_id, &token, &give_back, None)
            .await;
        result.map(Some)
    }
}
