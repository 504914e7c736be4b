//! The initial schema: events, products, stock buckets, orders, placements, purchase
//! quotas and the inventory ledger, with the unique keys the invariants rely on.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, integer, string_len, string_len_null, text,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    Title,
    Description,
    StartsAt,
    EndsAt,
    Status,
    Strategy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    EventId,
    Title,
    Description,
    OriginalPrice,
    FlashPrice,
    StockTotal,
    PerUserLimit,
    BucketCount,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockBuckets {
    Table,
    ProductId,
    BucketNo,
    Total,
    Available,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    Id,
    UserId,
    EventId,
    ProductId,
    BucketNo,
    Quantity,
    UnitPrice,
    TotalPrice,
    Strategy,
    Status,
    IdempotencyKey,
    RequestFingerprint,
    PlacementId,
    CreatedAt,
    ExpiresAt,
    PaidAt,
    TransactionId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Placements {
    Table,
    Id,
    UserId,
    EventId,
    ProductId,
    BucketNo,
    Quantity,
    UnitPrice,
    IdempotencyKey,
    RequestFingerprint,
    Status,
    OrderId,
    ErrorCode,
    ErrorMessage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PurchaseQuotas {
    Table,
    UserId,
    ProductId,
    Used,
}

#[derive(DeriveIden)]
enum InventoryLedger {
    Table,
    Id,
    ProductId,
    BucketNo,
    Delta,
    Reason,
    Reference,
    CreatedAt,
}

/// A UTC timestamp column: `DATETIME(6)` on MySQL (no 2038 limit, no session time
/// zone conversion), `timestamptz` on PostgreSQL, ISO text on SQLite.
fn instant<T: IntoIden>(backend: DbBackend, col: T, nullable: bool) -> ColumnDef {
    let mut def = ColumnDef::new(col);
    if backend == DbBackend::MySql {
        def.custom(Alias::new("DATETIME(6)"));
    } else {
        def.timestamp_with_time_zone();
    }
    if nullable {
        def.null();
    } else {
        def.not_null();
    }
    def
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    #[expect(
        clippy::too_many_lines,
        reason = "one statement per table, read top to bottom"
    )]
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    .col(string_len(Events::Title, 200))
                    .col(text(Events::Description))
                    .col(instant(db, Events::StartsAt, false))
                    .col(instant(db, Events::EndsAt, false))
                    .col(string_len(Events::Status, 16))
                    .col(string_len_null(Events::Strategy, 16))
                    .col(instant(db, Events::CreatedAt, false))
                    .col(instant(db, Events::UpdatedAt, false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_status_id")
                    .table(Events::Table)
                    .col(Events::Status)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(big_pk_auto(Products::Id))
                    .col(big_integer(Products::EventId))
                    .col(string_len(Products::Title, 200))
                    .col(text(Products::Description))
                    .col(big_integer(Products::OriginalPrice))
                    .col(big_integer(Products::FlashPrice))
                    .col(big_integer(Products::StockTotal))
                    .col(integer(Products::PerUserLimit))
                    .col(integer(Products::BucketCount))
                    .col(string_len(Products::Status, 16))
                    .col(instant(db, Products::CreatedAt, false))
                    .col(instant(db, Products::UpdatedAt, false))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_products_event")
                            .from(Products::Table, Products::EventId)
                            .to(Events::Table, Events::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_products_event")
                    .table(Products::Table)
                    .col(Products::EventId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StockBuckets::Table)
                    .col(big_integer(StockBuckets::ProductId))
                    .col(integer(StockBuckets::BucketNo))
                    .col(big_integer(StockBuckets::Total))
                    .col(big_integer(StockBuckets::Available))
                    .primary_key(
                        Index::create()
                            .col(StockBuckets::ProductId)
                            .col(StockBuckets::BucketNo),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stock_buckets_product")
                            .from(StockBuckets::Table, StockBuckets::ProductId)
                            .to(Products::Table, Products::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(string_len(Orders::Id, 36).primary_key())
                    .col(string_len(Orders::UserId, 64))
                    .col(big_integer(Orders::EventId))
                    .col(big_integer(Orders::ProductId))
                    .col(integer(Orders::BucketNo))
                    .col(integer(Orders::Quantity))
                    .col(big_integer(Orders::UnitPrice))
                    .col(big_integer(Orders::TotalPrice))
                    .col(string_len(Orders::Strategy, 16))
                    .col(string_len(Orders::Status, 16))
                    .col(string_len_null(Orders::IdempotencyKey, 64))
                    .col(string_len(Orders::RequestFingerprint, 64))
                    .col(string_len_null(Orders::PlacementId, 36))
                    .col(instant(db, Orders::CreatedAt, false))
                    .col(instant(db, Orders::ExpiresAt, false))
                    .col(instant(db, Orders::PaidAt, true))
                    .col(string_len_null(Orders::TransactionId, 64))
                    .col(instant(db, Orders::UpdatedAt, false))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "ux_orders_user_idempotency_key",
                &[Orders::UserId, Orders::IdempotencyKey][..],
                true,
            ),
            ("ux_orders_placement_id", &[Orders::PlacementId][..], true),
            (
                "ux_orders_transaction_id",
                &[Orders::TransactionId][..],
                true,
            ),
            (
                "ix_orders_user_created",
                &[Orders::UserId, Orders::CreatedAt][..],
                false,
            ),
            (
                "ix_orders_product_status",
                &[Orders::ProductId, Orders::Status][..],
                false,
            ),
            (
                "ix_orders_status_expires",
                &[Orders::Status, Orders::ExpiresAt][..],
                false,
            ),
        ] {
            let mut stmt = Index::create();
            stmt.name(name).table(Orders::Table);
            for col in cols {
                stmt.col(*col);
            }
            if unique {
                stmt.unique();
            }
            manager.create_index(stmt).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Placements::Table)
                    .col(string_len(Placements::Id, 36).primary_key())
                    .col(string_len(Placements::UserId, 64))
                    .col(big_integer(Placements::EventId))
                    .col(big_integer(Placements::ProductId))
                    .col(integer(Placements::BucketNo))
                    .col(integer(Placements::Quantity))
                    .col(big_integer(Placements::UnitPrice))
                    .col(string_len_null(Placements::IdempotencyKey, 64))
                    .col(string_len(Placements::RequestFingerprint, 64))
                    .col(string_len(Placements::Status, 16))
                    .col(string_len_null(Placements::OrderId, 36))
                    .col(string_len_null(Placements::ErrorCode, 32))
                    .col(string_len_null(Placements::ErrorMessage, 200))
                    .col(instant(db, Placements::CreatedAt, false))
                    .col(instant(db, Placements::UpdatedAt, false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_placements_user_idempotency_key")
                    .table(Placements::Table)
                    .col(Placements::UserId)
                    .col(Placements::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_placements_status_created")
                    .table(Placements::Table)
                    .col(Placements::Status)
                    .col(Placements::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PurchaseQuotas::Table)
                    .col(string_len(PurchaseQuotas::UserId, 64))
                    .col(big_integer(PurchaseQuotas::ProductId))
                    .col(integer(PurchaseQuotas::Used))
                    .primary_key(
                        Index::create()
                            .col(PurchaseQuotas::UserId)
                            .col(PurchaseQuotas::ProductId),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InventoryLedger::Table)
                    .col(big_pk_auto(InventoryLedger::Id))
                    .col(big_integer(InventoryLedger::ProductId))
                    .col(integer(InventoryLedger::BucketNo))
                    .col(big_integer(InventoryLedger::Delta))
                    .col(string_len(InventoryLedger::Reason, 32))
                    .col(string_len(InventoryLedger::Reference, 64))
                    .col(instant(db, InventoryLedger::CreatedAt, false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_inventory_ledger_product")
                    .table(InventoryLedger::Table)
                    .col(InventoryLedger::ProductId)
                    .col(InventoryLedger::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            InventoryLedger::Table.into_iden(),
            PurchaseQuotas::Table.into_iden(),
            Placements::Table.into_iden(),
            Orders::Table.into_iden(),
            StockBuckets::Table.into_iden(),
            Products::Table.into_iden(),
            Events::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
