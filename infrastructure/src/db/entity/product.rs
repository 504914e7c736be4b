//! `products`: what is sold in an event.

use sea_orm::entity::prelude::*;

/// One product row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The event.
    pub event_id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// List price, minor units.
    pub original_price: i64,
    /// Sale price, minor units.
    pub flash_price: i64,
    /// Units put on sale in all.
    pub stock_total: i64,
    /// Most units per buyer.
    pub per_user_limit: i32,
    /// Stock buckets.
    pub bucket_count: i32,
    /// `online` or `offline`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
