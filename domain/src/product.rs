//! Products (the "items"): what is sold, at what price, in what quantity, and to
//! whom how much.

use chrono::{DateTime, Utc};

use crate::error::{ErrorKind, ValidationErrors};
use crate::event::EventId;
use crate::text::{Description, Title};

/// A product id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(pub i64);

/// Whether a product sells when its event is on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProductStatus {
    /// Sells while its event is on sale.
    Online,
    /// Does not sell.
    Offline,
}

impl ProductStatus {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// Most units a product may be created with.
pub const MAX_STOCK: i64 = 10_000_000;
/// Largest price, in minor units.
pub const MAX_PRICE: i64 = 1_000_000_000_000;
/// Largest per-user limit.
pub const MAX_PER_USER_LIMIT: u32 = 100;
/// Most buckets a product may have.
pub const MAX_BUCKETS: u32 = 1024;

/// List and sale price in minor units: `1 ≤ flash ≤ original`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    original: i64,
    flash: i64,
}

impl Pricing {
    /// Checks both prices and their order.
    pub fn new(original: i64, flash: i64) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if !(1..=MAX_PRICE).contains(&original) {
            errors.add("original_price", "must be at least 1");
        }
        if !(1..=MAX_PRICE).contains(&flash) {
            errors.add("flash_price", "must be at least 1");
        } else if errors.is_empty() && flash > original {
            errors.add("flash_price", "must not exceed original_price");
        }
        errors.into_result(|| Self { original, flash })
    }

    /// List price.
    pub fn original(&self) -> i64 {
        self.original
    }

    /// Sale price.
    pub fn flash(&self) -> i64 {
        self.flash
    }
}

/// Most units one buyer may hold of a product: 1–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PerUserLimit(u32);

impl PerUserLimit {
    /// Checks the range.
    pub fn new(value: u32) -> Result<Self, ValidationErrors> {
        if (1..=MAX_PER_USER_LIMIT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValidationErrors::single(
                "per_user_limit",
                "must be between 1 and 100",
            ))
        }
    }

    /// The limit.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How many stock buckets a product has: 1–1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BucketCount(u32);

impl BucketCount {
    /// One bucket.
    pub const ONE: Self = Self(1);

    /// Checks the range; `field` names it in the violation.
    pub fn new(field: &str, value: u32) -> Result<Self, ValidationErrors> {
        if (1..=MAX_BUCKETS).contains(&value) {
            Ok(Self(value))
        } else {
            Err(ValidationErrors::single(
                field,
                "must be between 1 and 1024",
            ))
        }
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A rule about products was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductError {
    /// Input that breaks a rule.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// More units were to be removed than are unsold.
    #[error("cannot remove {requested} units: only {unsold} are unsold")]
    NotEnoughUnsold {
        /// Units asked to remove.
        requested: i64,
        /// Units not sold or reserved.
        unsold: i64,
    },
    /// The product's stock is being re-arranged; try again shortly.
    #[error("the product's stock is being re-arranged; try again shortly")]
    Suspended,
}

impl ProductError {
    /// The failure's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::NotEnoughUnsold { .. } => ErrorKind::InvalidState,
            Self::Suspended => ErrorKind::Unavailable,
        }
    }
}

/// A checked request to create a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    /// The event it belongs to.
    pub event_id: EventId,
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Description,
    /// Prices.
    pub pricing: Pricing,
    /// Units put on sale.
    pub stock: i64,
    /// Most units one buyer may hold.
    pub per_user_limit: PerUserLimit,
    /// Stock buckets.
    pub bucket_count: BucketCount,
}

/// The raw fields of a product to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSpec<'a> {
    /// Title.
    pub title: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// List price.
    pub original_price: i64,
    /// Sale price.
    pub flash_price: i64,
    /// Units.
    pub stock: i64,
    /// Per-user limit.
    pub per_user_limit: u32,
    /// Buckets.
    pub bucket_count: u32,
}

impl NewProduct {
    /// Checks every field, reporting all violations together.
    pub fn new(event_id: EventId, spec: &ProductSpec<'_>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = errors.collect(Title::parse("title", spec.title));
        let description = errors.collect(Description::parse(
            "description",
            spec.description.unwrap_or(""),
        ));
        let pricing = errors.collect(Pricing::new(spec.original_price, spec.flash_price));
        if !(1..=MAX_STOCK).contains(&spec.stock) {
            errors.add("stock", "must be between 1 and 10000000");
        }
        let per_user_limit = errors.collect(PerUserLimit::new(spec.per_user_limit));
        let bucket_count = errors.collect(BucketCount::new("bucket_count", spec.bucket_count));
        match (title, description, pricing, per_user_limit, bucket_count) {
            (
                Some(title),
                Some(description),
                Some(pricing),
                Some(per_user_limit),
                Some(bucket_count),
            ) if errors.is_empty() => Ok(Self {
                event_id,
                title,
                description,
                pricing,
                stock: spec.stock,
                per_user_limit,
                bucket_count,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New list price.
    pub original_price: Option<i64>,
    /// New sale price.
    pub flash_price: Option<i64>,
    /// New per-user limit.
    pub per_user_limit: Option<u32>,
}

/// A product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Id.
    pub id: ProductId,
    /// The event it belongs to.
    pub event_id: EventId,
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Description,
    /// Prices.
    pub pricing: Pricing,
    /// Units put on sale in all (created plus added minus removed).
    pub stock_total: i64,
    /// Most units one buyer may hold.
    pub per_user_limit: PerUserLimit,
    /// Stock buckets.
    pub bucket_count: BucketCount,
    /// Whether it sells.
    pub status: ProductStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// Applies `changes` (allowed in any state; new orders see them). All violations
    /// are reported together.
    pub fn edit(
        &mut self,
        changes: &ProductChanges,
        now: DateTime<Utc>,
    ) -> Result<(), ProductError> {
        let mut errors = ValidationErrors::new();
        let title = changes
            .title
            .as_deref()
            .and_then(|t| errors.collect(Title::parse("title", t)));
        let description = changes
            .description
            .as_deref()
            .and_then(|d| errors.collect(Description::parse("description", d)));
        let pricing = errors.collect(Pricing::new(
            changes.original_price.unwrap_or(self.pricing.original),
            changes.flash_price.unwrap_or(self.pricing.flash),
        ));
        let limit = changes
            .per_user_limit
            .and_then(|l| errors.collect(PerUserLimit::new(l)));
        if !errors.is_empty() {
            return Err(errors.into());
        }
        if let Some(title) = title {
            self.title = title;
        }
        if let Some(description) = description {
            self.description = description;
        }
        if let Some(pricing) = pricing {
            self.pricing = pricing;
        }
        if let Some(limit) = limit {
            self.per_user_limit = limit;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Sets the status. Idempotent.
    pub fn set_status(&mut self, status: ProductStatus, now: DateTime<Utc>) {
        if self.status != status {
            self.status = status;
            self.updated_at = now;
        }
    }

    /// Whether it sells (given its event is on sale).
    pub fn is_online(&self) -> bool {
        self.status == ProductStatus::Online
    }
}

#[cfg(test)]
#[path = "product_tests.rs"]
mod tests;
