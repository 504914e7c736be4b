//! Orders and placements whose units come from several buckets: `bucket_split` holds
//! the parts (`3:1,5:1`) when there is more than one; `bucket_no` stays the main one.
//! `orders.released_by` names the return that released an order, so that a retry of
//! a release whose answer was lost recognises its own work. Plus the index the
//! re-lay's read of a product's queued placements uses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string_len_null, text_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    BucketSplit,
    ReleasedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum Placements {
    Table,
    ProductId,
    Status,
    BucketSplit,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(text_null(Orders::BucketSplit))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(string_len_null(Orders::ReleasedBy, 96))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Placements::Table)
                    .add_column(text_null(Placements::BucketSplit))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_placements_product_status")
                    .table(Placements::Table)
                    .col(Placements::ProductId)
                    .col(Placements::Status)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_placements_product_status")
                    .table(Placements::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Placements::Table)
                    .drop_column(Placements::BucketSplit)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .drop_column(Orders::ReleasedBy)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .drop_column(Orders::BucketSplit)
                    .to_owned(),
            )
            .await
    }
}
