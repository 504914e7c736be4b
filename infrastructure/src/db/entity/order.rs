//! `orders`: units held for a buyer.

use sea_orm::entity::prelude::*;

/// One order row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
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
    /// The (main) bucket the units came from.
    pub bucket_no: i32,
    /// Units.
    pub quantity: i32,
    /// The parts (`3:1,5:1`) when the units came from several buckets.
    #[sea_orm(column_type = "Text", nullable)]
    pub bucket_split: Option<String>,
    /// Unit price when placed.
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub total_price: i64,
    /// The strategy that placed it.
    pub strategy: String,
    /// `pending_payment`, `paid`, `cancelled`, `expired`.
    pub status: String,
    /// The buyer's idempotency key (unique per user).
    pub idempotency_key: Option<String>,
    /// The request's fingerprint, compared on replays.
    pub request_fingerprint: String,
    /// The async placement that made it (unique).
    pub placement_id: Option<String>,
    /// When placed.
    pub created_at: DateTimeUtc,
    /// When, unpaid, it expires.
    pub expires_at: DateTimeUtc,
    /// When paid.
    pub paid_at: Option<DateTimeUtc>,
    /// Payment transaction id (unique).
    pub transaction_id: Option<String>,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// The token of the return (cancel, expiry) that released it.
    pub released_by: Option<String>,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
