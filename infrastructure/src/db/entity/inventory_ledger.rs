//! `inventory_ledger`: append-only record of every unit that moved.

use sea_orm::entity::prelude::*;

/// One ledger row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inventory_ledger")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The bucket.
    pub bucket_no: i32,
    /// Units in or out.
    pub delta: i64,
    /// Why.
    pub reason: String,
    /// Order id or admin action.
    pub reference: String,
    /// When.
    pub created_at: DateTimeUtc,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
