//! Schema migrations: one set that runs on SQLite, MariaDB/MySQL and PostgreSQL.

use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261202_000001_bucket_split;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261202_000001_bucket_split::Migration),
        ]
    }
}
