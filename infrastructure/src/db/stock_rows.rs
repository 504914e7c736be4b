//! The statements every stock-moving transaction shares: conditional bucket and quota
//! updates, the ledger rows of an allocation, and row locks where the engine has them.

use std::fmt::Write as _;

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

/// One raw statement with its values bound by position, in the engine's placeholder
/// style (`$n` on PostgreSQL, `?` elsewhere).
pub(super) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<sea_orm::Value>,
}

impl Sql {
    pub(super) fn new(backend: DbBackend, text: &str) -> Self {
        Self {
            backend,
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Appends `text` as it is.
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(super) fn value(&mut self, value: impl Into<sea_orm::Value>) -> &mut Self {
        self.values.push(value.into());
        if self.backend == DbBackend::Postgres {
            let _ = write!(self.text, "${}", self.values.len());
        } else {
            self.text.push('?');
        }
        self
    }

    pub(super) fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// One buyer's units of one product in a batch, and their limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct QuotaTake<'a> {
    pub user: &'a str,
    pub product_id: i64,
    pub units: u32,
    pub limit: u32,
}

/// [`take_quota`] for many buyers at once (each pair at most once): their quota rows
/// made sure of in one insert, then one update that grows each within its limit.
/// `false` (roll back) when any would pass its limit.
pub(super) async fn take_quotas(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    takes: &[QuotaTake<'_>],
) -> Result<bool, DbErr> {
    if takes.is_empty() {
        return Ok(true);
    }
    let ignore = if backend == DbBackend::MySql {
        "IGNORE "
    } else {
        ""
    };
    let mut insert = Sql::new(
        backend,
        &format!("INSERT {ignore}INTO purchase_quotas (user_id, product_id, used) VALUES "),
    );
    for (i, take) in takes.iter().enumerate() {
        insert.push(if i == 0 { "(" } else { ", (" });
        insert
            .value(take.user)
            .push(", ")
            .value(take.product_id)
            .push(", 0)");
    }
    if backend != DbBackend::MySql {
        insert.push(" ON CONFLICT (user_id, product_id) DO NOTHING");
    }
    conn.execute_raw(insert.statement()).await?;

    let mut update = Sql::new(backend, "UPDATE purchase_quotas SET used = used + CASE");
    for take in takes {
        update.push(" WHEN user_id = ").value(take.user);
        update.push(" AND product_id = ").value(take.product_id);
        update.push(" THEN ").value(i32_of(take.units));
    }
    update.push(" ELSE 0 END WHERE ");
    for (i, take) in takes.iter().enumerate() {
        update.push(if i == 0 { "(" } else { " OR (" });
        update.push("user_id = ").value(take.user);
        update.push(" AND product_id = ").value(take.product_id);
        update.push(" AND used + ").value(i32_of(take.units));
        update.push(" <= ").value(i32_of(take.limit)).push(")");
    }
    let changed = conn.execute_raw(update.statement()).await?;
    Ok(changed.rows_affected() == takes.len() as u64)
}

/// Takes units out of many buckets in one statement (each `(product, bucket)` at most
/// once, with its units): each bucket only if it holds its units. `false` (roll back)
/// when any holds too few.
pub(super) async fn take_buckets(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    takes: &[((i64, u32), i64)],
) -> Result<bool, DbErr> {
    if let [((product, bucket), units)] = takes {
        return move_available(conn, ProductId(*product), *bucket, -units).await;
    }
    let mut update = Sql::new(
        backend,
        "UPDATE stock_buckets SET available = available - CASE",
    );
    for ((product, bucket), units) in takes {
        update.push(" WHEN product_id = ").value(*product);
        update.push(" AND bucket_no = ").value(i32_of(*bucket));
        update.push(" THEN ").value(*units);
    }
    update.push(" ELSE 0 END WHERE ");
    for (i, ((product, bucket), units)) in takes.iter().enumerate() {
        update.push(if i == 0 { "(" } else { " OR (" });
        update.push("product_id = ").value(*product);
        update.push(" AND bucket_no = ").value(i32_of(*bucket));
        update.push(" AND available >= ").value(*units).push(")");
    }
    let changed = conn.execute_raw(update.statement()).await?;
    Ok(changed.rows_affected() == takes.len() as u64)
}
