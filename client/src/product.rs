//! Products, their stock, and the admin's inventory views.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::check::{Checked, violation, with_cross_rules};

/// Most units a product may be created with.
pub const MAX_STOCK: i64 = 10_000_000;
/// Most buckets a product may have.
pub const MAX_BUCKETS: u32 = 1024;

/// Whether a product sells when its event is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatusDto {
    /// Sells while its event is on sale.
    Online,
    /// Does not sell.
    Offline,
}

/// `POST /admin/events/{id}/products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct ProductCreateCmd {
    /// 1–200 characters.
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: String,
    /// At most 2000 characters.
    #[serde(default)]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// List price in minor units, 1–1,000,000,000,000.
    #[validate(range(
        min = 1,
        max = 1_000_000_000_000_i64,
        message = "must be between 1 and 1000000000000"
    ))]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub original_price: i64,
    /// Sale price in minor units, 1..=`original_price` (at most 1,000,000,000,000).
    #[validate(range(
        min = 1,
        max = 1_000_000_000_000_i64,
        message = "must be between 1 and 1000000000000"
    ))]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub flash_price: i64,
    /// Units for sale, 1–10,000,000.
    #[validate(range(min = 1, max = 10_000_000, message = "must be between 1 and 10000000"))]
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub stock: i64,
    /// Most units one buyer may hold, 1–100 (default 1).
    #[serde(default)]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[schema(minimum = 1, maximum = 100)]
    pub per_user_limit: Option<u32>,
    /// Stock buckets, 1–1024 (default: 1, or `ordering.bucket_count` under `buckets`).
    #[serde(default)]
    #[validate(range(min = 1, max = 1024, message = "must be between 1 and 1024"))]
    #[schema(minimum = 1, maximum = 1024)]
    pub bucket_count: Option<u32>,
}

/// `PATCH /admin/products/{id}`; applies to new orders only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct ProductPatchCmd {
    /// 1–200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = 200, message = "must be 1 to 200 characters"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"[^\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub title: Option<String>,
    /// At most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(max = 2000, message = "must be at most 2000 characters"))]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// List price in minor units, 1–1,000,000,000,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(
        min = 1,
        max = 1_000_000_000_000_i64,
        message = "must be between 1 and 1000000000000"
    ))]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub original_price: Option<i64>,
    /// Sale price in minor units, 1..=`original_price` (at most 1,000,000,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(
        min = 1,
        max = 1_000_000_000_000_i64,
        message = "must be between 1 and 1000000000000"
    ))]
    #[schema(minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub flash_price: Option<i64>,
    /// Most units one buyer may hold, 1–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[schema(minimum = 1, maximum = 100)]
    pub per_user_limit: Option<u32>,
}

/// `POST /admin/products/{id}/stock`: add (positive) or remove unsold (negative) units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct ProductStockCmd {
    /// Units to add or remove; not zero, at most 10,000,000 either way.
    #[validate(
        range(min = -10_000_000, max = 10_000_000, message = "must be between -10000000 and 10000000"),
        custom(function = "non_zero")
    )]
    #[schema(minimum = -10_000_000, maximum = 10_000_000)]
    pub delta: i64,
}

fn non_zero(delta: i64) -> Result<(), validator::ValidationError> {
    if delta == 0 {
        let mut error = validator::ValidationError::new("non_zero");
        error.message = Some("must not be zero".into());
        return Err(error);
    }
    Ok(())
}

/// `POST /admin/products/{id}/buckets`: re-arrange the stock into `count` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct ProductBucketsCmd {
    /// 1–1024.
    #[validate(range(min = 1, max = 1024, message = "must be between 1 and 1024"))]
    #[schema(minimum = 1, maximum = 1024)]
    pub count: u32,
}

/// A product as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductDto {
    /// Product id.
    pub id: i64,
    /// The event it belongs to.
    pub event_id: i64,
    /// Title.
    pub title: String,
    /// Description (empty when none was given).
    pub description: String,
    /// List price in minor units.
    pub original_price: i64,
    /// Sale price in minor units.
    pub flash_price: i64,
    /// Units put on sale in all.
    pub stock_total: i64,
    /// Units still for sale (buyer-facing: may lag by the cache TTL).
    pub stock_available: i64,
    /// Nothing is left to sell.
    pub sold_out: bool,
    /// Most units one buyer may hold.
    pub per_user_limit: u32,
    /// Stock buckets.
    pub bucket_count: u32,
    /// Whether it sells.
    pub status: ProductStatusDto,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One bucket of an [`InventoryDto`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BucketInventoryDto {
    /// Bucket number, from 0.
    pub bucket_no: u32,
    /// `available` of the bucket's DB row.
    pub db_available: i64,
    /// What the stock ledger would still sell from this bucket.
    pub cache_available: i64,
}

/// `GET /admin/products/{id}/inventory`: the DB and stock-ledger views side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InventoryDto {
    /// Product id.
    pub product_id: i64,
    /// Units put on sale in all.
    pub stock_total: i64,
    /// Σ `available` of the bucket rows.
    pub db_available: i64,
    /// What the stock ledger would still sell.
    pub cache_available: i64,
    /// Σ quantity of `pending_payment` and `paid` orders.
    pub held: i64,
    /// Units reserved in the stock ledger but not yet written to the DB.
    pub in_flight: i64,
    /// Per bucket.
    pub buckets: Vec<BucketInventoryDto>,
    /// Σ delta of the ledger rows.
    pub ledger_sum: i64,
    /// Every view agrees (see API.md).
    pub consistent: bool,
}

/// One row of the append-only inventory ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntryDto {
    /// Row id (ascending).
    pub id: i64,
    /// The bucket that moved.
    pub bucket_no: u32,
    /// Units in (positive) or out (negative).
    pub delta: i64,
    /// `stock_added`, `stock_removed`, `order_placed`, `order_cancelled`, `order_expired`, `rebalanced`.
    pub reason: String,
    /// What caused it: an order id, or an admin action.
    pub reference: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// `POST /admin/products/{id}/reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconcileDto {
    /// `cache_available + in_flight - db_available` before the repair (0 = no drift).
    pub drift_before: i64,
    /// Whether the stock ledger was rewritten from the DB.
    pub repaired: bool,
    /// Whether the inventory is consistent afterwards.
    pub consistent: bool,
}

impl Checked for ProductCreateCmd {
    fn check(&self) -> Result<(), validator::ValidationErrors> {
        with_cross_rules(self, |errors| {
            if self.flash_price > self.original_price && self.original_price >= 1 {
                violation(errors, "flash_price", "must not exceed original_price");
            }
        })
    }
}

impl Checked for ProductPatchCmd {
    fn check(&self) -> Result<(), validator::ValidationErrors> {
        with_cross_rules(self, |errors| {
            if let (Some(original), Some(flash)) = (self.original_price, self.flash_price)
                && flash > original
                && original >= 1
            {
                violation(errors, "flash_price", "must not exceed original_price");
            }
        })
    }
}

impl Checked for ProductStockCmd {}
impl Checked for ProductBucketsCmd {}
