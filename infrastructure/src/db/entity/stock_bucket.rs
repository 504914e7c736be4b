//! `stock_buckets`: a product's units, split into buckets; the final guard against
//! oversell is the conditional decrement of one of these rows.

use sea_orm::entity::prelude::*;

/// One bucket row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_buckets")]
pub struct Model {
    /// The product.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: i64,
    /// Bucket number, from 0.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket_no: i32,
    /// Units put in this bucket in all.
    pub total: i64,
    /// Units it can still sell.
    pub available: i64,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
