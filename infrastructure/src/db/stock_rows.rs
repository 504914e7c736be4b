//! The statements every stock-moving transaction shares: conditional bucket and quota
//! updates, the ledger rows of an allocation, and row locks where the engine has them.

use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::ledger::LedgerReason;
use flash_sale_domain::product::ProductId;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Statement,
};

use super::entity::{inventory_ledger, purchase_quota, stock_bucket};
use super::product_gateway::ledger_row;

/// An `i32` column value of a `u32`.
pub(super) fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// `SELECT … FOR UPDATE` where the engine locks rows (MySQL, PostgreSQL); SQLite runs
/// one writer at a time, so its write transactions need no row locks.
pub(super) fn locked<E: EntityTrait>(
    select: sea_orm::Select<E>,
    backend: DbBackend,
) -> sea_orm::Select<E> {
    if backend == DbBackend::Sqlite {
        select
    } else {
        select.lock_exclusive()
    }
}

/// A statement that had to change exactly one row changed none: the transaction must
/// roll back rather than write around it.
pub(super) fn no_row(what: &str) -> DbErr {
    DbErr::Custom(format!("{what}: no row changed"))
}

/// Makes sure the buyer's quota row exists (with 0 used) without failing when it
/// does: `ON CONFLICT DO NOTHING` / `INSERT IGNORE`.
pub(super) async fn ensure_quota_row(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    user: &UserId,
    product_id: ProductId,
) -> Result<(), DbErr> {
    let sql = match backend {
        DbBackend::MySql => {
            "INSERT IGNORE INTO purchase_quotas (user_id, product_id, used) VALUES (?, ?, 0)"
        }
        DbBackend::Postgres => {
            "INSERT INTO purchase_quotas (user_id, product_id, used) VALUES ($1, $2, 0) \
             ON CONFLICT (user_id, product_id) DO NOTHING"
        }
        _ => {
            "INSERT INTO purchase_quotas (user_id, product_id, used) VALUES (?, ?, 0) \
             ON CONFLICT (user_id, product_id) DO NOTHING"
        }
    };
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [user.as_str().into(), product_id.0.into()],
    ))
    .await?;
    Ok(())
}

/// Adds `delta` to one bucket's `available`; a decrement only when that many are
/// there. Whether the bucket changed.
pub(super) async fn move_available(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    bucket_no: u32,
    delta: i64,
) -> Result<bool, DbErr> {
    let mut update = stock_bucket::Entity::update_many()
        .col_expr(
            stock_bucket::Column::Available,
            Expr::col(stock_bucket::Column::Available).add(delta),
        )
        .filter(stock_bucket::Column::ProductId.eq(product_id.0))
        .filter(stock_bucket::Column::BucketNo.eq(i32_of(bucket_no)));
    if delta < 0 {
        update = update.filter(stock_bucket::Column::Available.gte(-delta));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Takes every part of `allocation` out of its bucket; `false` (some buckets may have
/// moved: roll back) when one holds too few.
pub(super) async fn take_allocation(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    allocation: &Allocation,
) -> Result<bool, DbErr> {
    for part in allocation.parts() {
        if !move_available(conn, product_id, part.bucket_no, -i64::from(part.units)).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives every part of `allocation` back to its bucket; a bucket that is not there is
/// an error.
pub(super) async fn return_allocation(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    allocation: &Allocation,
) -> Result<(), DbErr> {
    for part in allocation.parts() {
        if !move_available(conn, product_id, part.bucket_no, i64::from(part.units)).await? {
            return Err(no_row(&format!(
                "bucket {} of product {}",
                part.bucket_no, product_id.0
            )));
        }
    }
    Ok(())
}

/// Adds `units` to the buyer's used quota of the product, only within `limit`.
pub(super) async fn take_quota(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    user: &UserId,
    product_id: ProductId,
    units: u32,
    limit: u32,
) -> Result<bool, DbErr> {
    ensure_quota_row(conn, backend, user, product_id).await?;
    let quota = purchase_quota::Entity::update_many()
        .col_expr(
            purchase_quota::Column::Used,
            Expr::col(purchase_quota::Column::Used).add(i32_of(units)),
        )
        .filter(purchase_quota::Column::UserId.eq(user.as_str()))
        .filter(purchase_quota::Column::ProductId.eq(product_id.0))
        .filter(
            Expr::col(purchase_quota::Column::Used)
                .add(i32_of(units))
                .lte(i32_of(limit)),
        )
        .exec(conn)
        .await?;
    Ok(quota.rows_affected == 1)
}

/// Gives `units` of the buyer's quota back (never below zero).
pub(super) async fn give_back_quota(
    conn: &impl ConnectionTrait,
    user: &UserId,
    product_id: ProductId,
    units: u32,
) -> Result<(), DbErr> {
    purchase_quota::Entity::update_many()
        .col_expr(
            purchase_quota::Column::Used,
            Expr::col(purchase_quota::Column::Used).sub(i32_of(units)),
        )
        .filter(purchase_quota::Column::UserId.eq(user.as_str()))
        .filter(purchase_quota::Column::ProductId.eq(product_id.0))
        .filter(purchase_quota::Column::Used.gte(i32_of(units)))
        .exec(conn)
        .await?;
    Ok(())
}

/// One ledger row per part of `allocation`, each `sign` × its units.
pub(super) fn allocation_ledger_rows(
    product_id: ProductId,
    allocation: &Allocation,
    sign: i64,
    reason: LedgerReason,
    reference: &str,
    now: DateTime<Utc>,
) -> impl Iterator<Item = inventory_ledger::ActiveModel> {
    allocation
        .deltas(sign)
        .into_iter()
        .map(move |d| ledger_row(product_id, d.bucket_no, d.delta, reason, reference, now))
}
