//! `purchase_quotas`: units each buyer holds of each product — the DB backstop of
//! the per-user limit.

use sea_orm::entity::prelude::*;

/// One quota row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase_quotas")]
pub struct Model {
    /// The buyer.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// The product.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: i64,
    /// Units held in live orders.
    pub used: i32,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
