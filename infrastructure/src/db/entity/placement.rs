//! `placements`: async placements in embedded mode (with Redis they live there).

use sea_orm::entity::prelude::*;

/// One placement row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "placements")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The buyer.
    pub user_id: String,
    /// The event.
    pub event_id: i64,
    /// The product.
    pub product_id: i64,
    /// The (main) reserved bucket.
    pub bucket_no: i32,
    /// Units.
    pub quantity: i32,
    /// The parts (`3:1,5:1`) when the units came from several buckets.
    #[sea_orm(column_type = "Text", nullable)]
    pub bucket_split: Option<String>,
    /// Unit price when reserved.
    pub unit_price: i64,
    /// The buyer's idempotency key (unique per user).
    pub idempotency_key: Option<String>,
    /// The request's fingerprint.
    pub request_fingerprint: String,
    /// `queued`, `succeeded`, `failed`.
    pub status: String,
    /// The order, once succeeded.
    pub order_id: Option<String>,
    /// Error code, once failed.
    pub error_code: Option<String>,
    /// Error message, once failed.
    pub error_message: Option<String>,
    /// When accepted.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
