//! `GET /admin/stream`: what the console shows, one snapshot at a time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::event::StrategyDto;
use crate::product::{InventoryDto, ProductStatusDto};

/// Every product of the online events, as the admin stream sends it (event
/// `snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleSnapshotDto {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// One entry per product of each online event.
    pub products: Vec<ProductPulseDto>,
}

/// One product's stock and recent attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductPulseDto {
    /// The product.
    pub product_id: i64,
    /// Its event.
    pub event_id: i64,
    /// The event's title.
    pub event_title: String,
    /// The product's title.
    pub title: String,
    /// `online` or `offline`.
    pub status: ProductStatusDto,
    /// The strategy its orders take now.
    pub effective_strategy: StrategyDto,
    /// The database and stock-ledger views of its stock (as
    /// `GET /admin/products/{id}/inventory`).
    pub inventory: InventoryDto,
    /// Attempts per second over the last minute, oldest first; seconds without any
    /// are left out.
    pub per_second: Vec<AttemptsDto>,
}

/// What became of the order attempts of one second, over every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptsDto {
    /// The second (Unix time).
    pub second: i64,
    /// Orders made (201) or placements accepted (202).
    pub sold: u64,
    /// `SOLD_OUT` refusals.
    pub sold_out: u64,
    /// `LIMIT_EXCEEDED` refusals.
    pub limit_exceeded: u64,
    /// `NOT_ON_SALE` refusals.
    pub not_on_sale: u64,
    /// `UNAVAILABLE` answers.
    pub unavailable: u64,
    /// `RATE_LIMITED` refusals (the per-buyer limit).
    pub rate_limited: u64,
}
