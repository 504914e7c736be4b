//! Orders and async placements: the buyer's commands and what they read back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::check::Checked;
use crate::event::StrategyDto;

/// Lifecycle status of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatusDto {
    /// Units held; waiting for payment until `expires_at`.
    PendingPayment,
    /// Paid.
    Paid,
    /// Cancelled by the buyer; units returned.
    Cancelled,
    /// Not paid in time; units returned.
    Expired,
}

/// `POST /orders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct OrderPlaceCmd {
    /// The product to buy.
    #[validate(range(min = 1, message = "must be a product id"))]
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// Units, 1–1,000,000.
    #[validate(range(min = 1, max = 1_000_000, message = "must be between 1 and 1000000"))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: u32,
}

/// `POST /orders/{id}/pay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
pub struct OrderPayCmd {
    /// The payment provider's transaction id, 1–64 characters, unique across orders.
    #[validate(length(min = 1, max = 64, message = "must be 1 to 64 characters"))]
    #[schema(min_length = 1, max_length = 64)]
    pub transaction_id: String,
    /// Must equal the order's `total_price`.
    pub amount: i64,
}

/// `GET /admin/orders?product_id=&status=&page=&page_size=`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Validate, IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct AdminOrderListQry {
    /// Only orders of this product.
    pub product_id: Option<i64>,
    /// Only orders in this status.
    pub status: Option<OrderStatusDto>,
    /// 1-based page number (default 1).
    #[validate(range(min = 1, message = "must be at least 1"))]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

/// An order as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderDto {
    /// Opaque order id.
    pub id: String,
    /// The buyer.
    pub user_id: String,
    /// The event.
    pub event_id: i64,
    /// The product.
    pub product_id: i64,
    /// The stock bucket the units came from (the first, when several gave units).
    pub bucket_no: u32,
    /// Every bucket the units came from and how many each gave; one entry unless no
    /// single bucket held the quantity.
    #[serde(default)]
    pub buckets: Vec<OrderBucketDto>,
    /// Units.
    pub quantity: u32,
    /// `flash_price` when the order was placed.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub total_price: i64,
    /// The strategy that placed it.
    pub strategy: StrategyDto,
    /// Lifecycle status.
    pub status: OrderStatusDto,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When an unpaid order expires.
    pub expires_at: DateTime<Utc>,
    /// When it was paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment's transaction id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
}

/// Units an order took from one stock bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderBucketDto {
    /// The bucket.
    pub bucket_no: u32,
    /// Units from it.
    #[schema(minimum = 1)]
    pub quantity: u32,
}

/// Status of an async placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlacementStatusDto {
    /// Units reserved; the order is being written.
    Queued,
    /// The order exists: see `order_id`.
    Succeeded,
    /// No order; the units went back. See `error`.
    Failed,
}

/// Why a placement failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacementErrorDto {
    /// An error code, as in the error envelope.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// An async placement (`202` of `POST /orders`, and `GET /placements/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlacementDto {
    /// Opaque placement id.
    pub id: String,
    /// The product.
    pub product_id: i64,
    /// Units.
    pub quantity: u32,
    /// Status.
    pub status: PlacementStatusDto,
    /// The order, once `succeeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The reason, once `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PlacementErrorDto>,
}

impl Checked for OrderPlaceCmd {}
impl Checked for OrderPayCmd {}
impl Checked for AdminOrderListQry {}
