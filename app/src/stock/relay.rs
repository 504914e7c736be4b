//! The re-lay protocol of re-arrangements, reconciles and strategy switches:
//!
//! 1. take the product's load lock (one re-lay at a time, across instances);
//! 2. suspend the product under a lease — new reservations and returns wait;
//! 3. wait until nothing is in progress: no sync order between its reservation and
//!    its settlement, no return, no placement that is not yet a durable row (queued
//!    placements are carried over, they need not finish; those recorded in the stock
//!    ledger with their reservation get their rows written now);
//! 4. in one database transaction: change the layout (re-arrangement), read the
//!    stock with its rows locked and rewrite the ledger from it, then commit;
//! 5. still suspended, look at the result (a reconcile takes its inventory here, so
//!    that work starting the moment the suspension ends is not judged as its own);
//! 6. always end the suspension and let go of the lock, error or not.
//!
//! The lock and the suspension are leases renewed while the work runs; if a renewal
//! fails the work stops, and a lease that is not renewed ends by itself.

use std::collections::HashSet;
use std::time::Duration;

use flash_sale_client::InventoryDto;
use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{GatewayError, HoldKind, LockLease, Relay, Suspension};
use flash_sale_domain::product::{Product, ProductId};

use super::StockService;
use super::load::LedgerSink;
use crate::error::AppError;

/// How long a suspension lasts unless renewed.
const SUSPENSION_TTL: Duration = Duration::from_secs(10);
/// How often the leases of a re-lay are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How long a re-lay waits for the operations in progress to finish.
const QUIESCE_WAIT: Duration = Duration::from_secs(3);

impl StockService {
    /// Re-lays the product's unsold units over `count` buckets live (new orders wait
    /// briefly or get 503 meanwhile).
    pub async fn rebucket(&self, product_id: ProductId, count: u32) -> Result<Product, AppError> {
        self.relay(
            product_id,
            Relay::Rebucket { count },
            "try again",
            async |product| Ok(product),
        )
        .await
    }

    /// Rewrites the ledger's copy of the product from the database. Returns the drift
    /// found just before (see [`super::Drift::size`]) and the inventory as the rewrite
    /// left it — taken before the suspension ends, so a return or an order that starts
    /// the moment it ends (an expiry job waiting on the suspension, say) is not mistaken
    /// for what the reconcile wrote.
    pub async fn reload(&self, product_id: ProductId) -> Result<(i64, InventoryDto), AppError> {
        let before = self
            .check(product_id)
            .await?
            .map_or(0, |check| check.drift().size());
        let after = self
            .relay(
                product_id,
                Relay::Reload,
                "try the reconcile again",
                async |product| self.inventory_of(&product).await,
            )
            .await?;
        if before != 0 {
            tracing::warn!(
                product.id = product_id.0,
                drift = before,
                "stock ledger drift repaired from the database"
            );
        }
        Ok((before, after))
    }

    /// The protocol above; `then` runs on the re-laid product while the suspension
    /// still holds (nothing else moves the product's stock meanwhile).
    async fn relay<T>(
        &self,
        product_id: ProductId,
        relay: Relay,
        retry: &str,
        then: impl AsyncFnOnce(Product) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        self.ensure_loaded(product_id).await?;
        let lease = self.load_lock(product_id).await?;
        let suspension = Suspension {
            owner: uuid::Uuid::now_v7().to_string(),
            ttl: SUSPENSION_TTL,
        };
        let result = match self.ledger.suspend(product_id, &suspension).await {
            Ok(true) => {
                let work = async {
                    self.quiesce(product_id, retry).await?;
                    let sink = LedgerSink {
                        ledger: &*self.ledger,
                        product_id,
                    };
                    let product = match self
                        .products
                        .relay(product_id, relay, self.clock.now(), &sink)
                        .await
                    {
                        Ok(product) => product,
                        Err(GatewayError::NotFound) => return Err(AppError::NotFound("product")),
                        Err(e) => return Err(e.into()),
                    };
                    then(product).await
                };
                tokio::select! {
                    result = work => result,
                    lost = self.keep_leases(product_id, &lease, &suspension) => Err(lost),
                }
            }
            Ok(false) => Err(AppError::Unavailable(
                format!("the stock is being re-laid already; {retry}").into(),
            )),
            Err(e) => Err(e.into()),
        };
        // Whatever happened: the suspension ends (or expires by itself) and the lock goes.
        if let Err(e) = self.ledger.resume(product_id, &suspension).await {
            tracing::warn!(product.id = product_id.0, error = %Chain(&e), "could not end a suspension; it expires");
        }
        self.unlock(&lease).await;
        self.clear_sold_out(product_id).await;
        result
    }

    /// Renews the load lock and the suspension until one of them is lost; returns the
    /// error that stops the re-lay then.
    async fn keep_leases(
        &self,
        product_id: ProductId,
        lease: &LockLease,
        suspension: &Suspension,
    ) -> AppError {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let renewed = async {
                Ok::<_, GatewayError>(
                    self.locks.renew(lease, super::LOAD_LOCK_TTL).await?
                        && self.ledger.renew(product_id, suspension).await?,
                )
            }
            .await;
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    return AppError::Unavailable(
                        "the re-lay lost its lease; nothing was changed, try again".into(),
                    );
                }
                Err(e) => return e.into(),
            }
        }
    }

    /// Waits until nothing that moves the product's stock is in progress: no sync
    /// order between reservation and settlement, no return, and every placement hold
    /// a durable row (written now for placements recorded with their holds). New work
    /// is held off by the suspension, so this only shrinks.
    async fn quiesce(&self, product_id: ProductId, retry: &str) -> Result<(), AppError> {
        let deadline = tokio::time::Instant::now() + QUIESCE_WAIT;
        let mut durable: HashSet<String> = HashSet::new();
        loop {
            let Some(view) = self.ledger.view(product_id).await? else {
                return Ok(());
            };
            let orders = view
                .holds
                .iter()
                .filter(|h| h.kind == HoldKind::Order)
                .count();
            let unknown: Vec<String> = view
                .holds
                .iter()
                .filter(|h| h.kind == HoldKind::Placement && !durable.contains(&h.token))
                .map(|h| h.token.clone())
                .collect();
            if !unknown.is_empty() {
                durable.extend(self.placements.write_rows(&unknown).await?);
            }
            let placements = unknown.iter().filter(|t| !durable.contains(*t)).count();
            if orders == 0 && placements == 0 && view.returns.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::Unavailable(
                    format!(
                        "{orders} orders, {placements} placements and {} returns still in progress; {retry}",
                        view.returns.len()
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
