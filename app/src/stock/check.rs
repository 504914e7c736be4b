//! Consistency, bucket by bucket: what the ledger holds against what the database
//! holds, with in-flight work accounted for — a hold whose order is already written
//! (committed, not yet settled) is counted as sold on both sides — so that a busy,
//! healthy sale never looks drifted.

use std::collections::HashSet;
use std::time::Duration;

use flash_sale_client::{BucketInventoryDto, InventoryDto};
use flash_sale_domain::gateway::LedgerView;
use flash_sale_domain::product::{Product, ProductId};
use flash_sale_domain::stock::StockBucket;

use super::StockService;
use crate::error::AppError;

/// The ledger's view and the database's buckets side by side.
#[derive(Debug, Clone)]
pub struct StockCheck {
    /// The ledger's view.
    pub view: LedgerView,
    /// The database's buckets, read after the view.
    pub buckets: Vec<StockBucket>,
    /// Tokens of the view's holds whose order is already written.
    pub committed: HashSet<String>,
}

/// How far the ledger is from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The two have different numbers of buckets.
    pub layout_differs: bool,
    /// Per bucket (of the database): ledger − database, in-flight work accounted for.
    pub per_bucket: Vec<i64>,
    /// Returns were in progress: their effect cannot be told from drift yet.
    pub uncertain: bool,
}

impl Drift {
    /// Whether the two agree.
    pub fn is_zero(&self) -> bool {
        !self.layout_differs && self.per_bucket.iter().all(|d| *d == 0)
    }

    /// One number for "how much": Σ |per-bucket drift| (the bucket count difference
    /// when the layouts differ).
    pub fn size(&self) -> i64 {
        let units: i64 = self.per_bucket.iter().map(|d| d.abs()).sum();
        if self.layout_differs && units == 0 {
            1
        } else {
            units
        }
    }
}

impl StockCheck {
    /// Units of the committed holds, by bucket number.
    fn committed_units(&self, bucket_no: u32) -> i64 {
        self.view
            .holds
            .iter()
            .filter(|h| self.committed.contains(&h.token))
            .map(|h| i64::from(h.allocation.units_in(bucket_no)))
            .sum()
    }

    /// Units reserved and not yet written to the database.
    pub fn in_flight(&self) -> i64 {
        self.view
            .holds
            .iter()
            .filter(|h| !self.committed.contains(&h.token))
            .map(|h| i64::from(h.allocation.quantity()))
            .sum()
    }

    /// Per bucket: what the ledger would still sell plus what it holds for unwritten
    /// orders, against what the database has available.
    pub fn drift(&self) -> Drift {
        let layout_differs = self.view.available.len() != self.buckets.len()
            || self
                .buckets
                .iter()
                .zip(0_u32..)
                .any(|(b, i)| b.bucket_no != i);
        let per_bucket = self
            .buckets
            .iter()
            .map(|b| {
                let i = b.bucket_no as usize;
                let ledger = self.view.available.get(i).copied().unwrap_or(0)
                    + self.view.in_flight.get(i).copied().unwrap_or(0)
                    - self.committed_units(b.bucket_no);
                ledger - b.available
            })
            .collect();
        Drift {
            layout_differs,
            per_bucket,
            uncertain: !self.view.returns.is_empty(),
        }
    }

    /// A hold or return that has been in progress for longer than `after` (its
    /// request is gone; the recovery job ends it).
    pub fn has_stuck_work(&self, after: Duration) -> bool {
        self.view.holds.iter().any(|h| h.age >= after)
            || self.view.returns.iter().any(|r| r.age >= after)
    }
}

impl StockService {
    /// The ledger's view of a loaded product and the database's buckets; `None` when
    /// the product is not loaded.
    pub async fn check(&self, product_id: ProductId) -> Result<Option<StockCheck>, AppError> {
        let Some(view) = self.ledger.view(product_id).await? else {
            return Ok(None);
        };
        let tokens: Vec<String> = view.holds.iter().map(|h| h.token.clone()).collect();
        let (buckets, committed) = self.products.stock_snapshot(product_id, &tokens).await?;
        Ok(Some(StockCheck {
            view,
            buckets,
            committed,
        }))
    }

    /// The ledger's view of a loaded product (loading it first).
    pub async fn view(&self, product_id: ProductId) -> Result<LedgerView, AppError> {
        self.ensure_loaded(product_id).await?;
        self.ledger
            .view(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))
    }

    /// The inventory: the database and ledger views side by side. `consistent` only
    /// when they agree bucket by bucket (in-flight work accounted for), the ledger rows
    /// sum to what is available, every unit is available or held, and nothing is stuck
    /// in progress.
    pub async fn inventory(&self, product_id: ProductId) -> Result<InventoryDto, AppError> {
        let product = self
            .products
            .find(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        self.inventory_of(&product).await
    }

    /// [`StockService::inventory`] of a product already read.
    pub async fn inventory_of(&self, product: &Product) -> Result<InventoryDto, AppError> {
        let product_id = product.id;
        self.ensure_loaded(product_id).await?;
        let check = self
            .check(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let held = self.orders.held(product_id).await?;
        let ledger_sum = self.products.ledger_sum(product_id).await?;
        let db_available: i64 = check.buckets.iter().map(|b| b.available).sum();
        let cache_available: i64 = check.view.available.iter().sum();
        let drift = check.drift();
        Ok(InventoryDto {
            product_id: product_id.0,
            stock_total: product.stock_total,
            db_available,
            cache_available,
            held,
            in_flight: check.in_flight(),
            buckets: check
                .buckets
                .iter()
                .map(|b| BucketInventoryDto {
                    bucket_no: b.bucket_no,
                    db_available: b.available,
                    cache_available: check
                        .view
                        .available
                        .get(b.bucket_no as usize)
                        .copied()
                        .unwrap_or(0),
                })
                .collect(),
            ledger_sum,
            consistent: ledger_sum == db_available
                && db_available + held == product.stock_total
                && drift.is_zero()
                && !drift.uncertain
                && !check.has_stuck_work(self.recovery_after),
        })
    }
}
