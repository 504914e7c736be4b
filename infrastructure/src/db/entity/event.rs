//! `events`: sale events.

use sea_orm::entity::prelude::*;

/// One event row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Opening time.
    pub starts_at: DateTimeUtc,
    /// Closing time.
    pub ends_at: DateTimeUtc,
    /// `draft`, `online`, `offline`.
    pub status: String,
    /// `sync`, `async`, `buckets`, or null to follow the configuration.
    pub strategy: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written out where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
