//! The order transactions' bodies: placing an order (every bucket of its allocation,
//! the quota, the order and its ledger rows) or a group of them in one transaction,
//! releasing one (with its row locked), and the retry of a transaction that hit a
//! transient failure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flash_sale_domain::Chain;
use flash_sale_domain::gateway::Release;
use flash_sale_domain::ledger::LedgerReason;
use flash_sale_domain::order::{Order, OrderId, OrderStatus};
use flash_sale_domain::product::PerUserLimit;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbBackend, DbErr, EntityTrait, QueryFilter};

use super::entity::{inventory_ledger, order};
use super::error::{duplicate_key, is_transient, waited_out};
use super::group_commit::all_or_each;
use super::order_gateway::{to_domain, to_row};
use super::stock_rows::{
    QuotaTake, allocation_ledger_rows, give_back_quota, locked, no_row, return_allocation,
    take_allocation, take_buckets, take_quota, take_quotas,
};
use super::{Database, WriteTx};

/// How often a transaction that hit a deadlock or serialization failure is retried.
const TRANSIENT_ATTEMPTS: usize = 3;

/// The order transaction's body: the quota only within the limit, the order and its
/// ledger rows, then every bucket of the allocation only if it holds enough.
///
/// The bucket rows come last, just before the commit (see [`place_all_in`]).
pub(super) async fn place_in(
    tx: &WriteTx,
    backend: DbBackend,
    order: &Order,
    limit: PerUserLimit,
) -> Result<Placed, DbErr> {
    if !take_quota(
        &**tx,
        backend,
        &order.user_id,
        order.product_id,
        order.quantity,
        limit.get(),
    )
    .await?
    {
        return Ok(Placed::OverLimit);
    }
    to_row(order).insert(&**tx).await?;
    inventory_ledger::Entity::insert_many(placed_ledger_rows(order))
        .exec_without_returning(&**tx)
        .await?;
    if !take_allocation(&**tx, order.product_id, &order.allocation).await? {
        return Ok(Placed::SoldOut);
    }
    Ok(Placed::Done)
}

/// Many orders in one transaction: every buyer's quota in one update, every order and
/// every ledger row in one insert each, then every touched bucket decremented in one
/// statement (each by its summed units). `false` (roll back) when any guard says no.
///
/// The bucket row of a hot product is the one row every writer of its sale locks: it
/// is taken last, so that it stays locked for one statement and the commit rather
/// than for the whole transaction — the consumer's batches (and a sync batch beside a
/// cancel) then overlap everything but that. Quota rows before bucket rows, as a
/// release takes them ([`release_in`]), so the two never wait on each other in a
/// cycle.
pub(super) async fn place_all_in(
    tx: &WriteTx,
    backend: DbBackend,
    orders: &[(&Order, PerUserLimit)],
) -> Result<bool, DbErr> {
    let mut buckets: BTreeMap<(i64, u32), i64> = BTreeMap::new();
    let mut quotas: BTreeMap<(&str, i64), (u32, u32)> = BTreeMap::new();
    for (o, limit) in orders {
        for part in o.allocation.parts() {
            *buckets.entry((o.product_id.0, part.bucket_no)).or_default() += i64::from(part.units);
        }
        let quota = quotas
            .entry((o.user_id.as_str(), o.product_id.0))
            .or_insert((0, limit.get()));
        quota.0 += o.quantity;
        quota.1 = quota.1.min(limit.get());
    }
    let takes: Vec<QuotaTake<'_>> = quotas
        .into_iter()
        .map(|((user, product_id), (units, limit))| QuotaTake {
            user,
            product_id,
            units,
            limit,
        })
        .collect();
    if !take_quotas(&**tx, backend, &takes).await? {
        return Ok(false);
    }
    order::Entity::insert_many(orders.iter().map(|(o, _)| to_row(o)))
        .exec_without_returning(&**tx)
        .await?;
    inventory_ledger::Entity::insert_many(orders.iter().flat_map(|(o, _)| placed_ledger_rows(o)))
        .exec_without_returning(&**tx)
        .await?;
    let buckets: Vec<_> = buckets.into_iter().collect();
    take_buckets(&**tx, backend, &buckets).await
}

/// One order in a transaction of its own.
async fn place_one(db: &Database, order: &Order, limit: PerUserLimit) -> Result<Placed, DbErr> {
    let tx = db.begin_write().await?;
    let result = place_in(&tx, db.backend(), order, limit).await;
    tx.finish(result, |placed| matches!(placed, Placed::Done))
        .await
}

/// A group commit of orders: all in one transaction, or — when a guard or key refuses
/// one — each in its own; the outcome of each, in order.
pub(super) async fn place_batch(
    db: &Database,
    orders: Vec<(Order, PerUserLimit)>,
) -> Vec<Result<Placed, DbErr>> {
    all_or_each(
        &orders,
        Placed::Done,
        |orders| async move {
            let orders: Vec<_> = orders.iter().map(|(o, l)| (o, *l)).collect();
            let tx = db.begin_write().await?;
            let result = place_all_in(&tx, db.backend(), &orders).await;
            tx.finish(result, |done| *done).await
        },
        |(order, limit)| place_one(db, order, *limit),
    )
    .await
}

/// The `order_placed` ledger rows of `order`, one per bucket it took units from.
pub(super) fn placed_ledger_rows(
    order: &Order,
) -> impl Iterator<Item = inventory_ledger::ActiveModel> + '_ {
    allocation_ledger_rows(
        order.product_id,
        &order.allocation,
        -1,
        LedgerReason::OrderPlaced,
        order.id.as_str(),
        order.created_at,
    )
}

/// What one attempt of the order transaction concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placed {
    Done,
    SoldOut,
    OverLimit,
}

/// Locks the order's row and reads it, so that the buckets its units go back to
/// are the ones it names now; then the status (and who released it), the quota, one
/// ledger row per bucket and, last (see [`place_all_in`]), every bucket of its
/// allocation. A release that finds its own token on the row was done by an earlier
/// attempt whose answer was lost: it answers that (the transaction writes nothing).
pub(super) async fn release_in(
    tx: &WriteTx,
    backend: DbBackend,
    id: &OrderId,
    release: Release,
    now: DateTime<Utc>,
    token: &str,
) -> Result<Option<Order>, DbErr> {
    let (status, reason) = match release {
        Release::Cancelled => (OrderStatus::Cancelled, LedgerReason::OrderCancelled),
        Release::Expired => (OrderStatus::Expired, LedgerReason::OrderExpired),
    };
    let Some(row) = locked(order::Entity::find_by_id(id.as_str().to_owned()), backend)
        .one(&**tx)
        .await?
    else {
        return Err(DbErr::RecordNotFound(format!("order {id}")));
    };
    let ours = row.released_by.as_deref() == Some(token);
    let mut order = to_domain(row).map_err(|e| DbErr::Custom(e.to_string()))?;
    if ours && order.status == status {
        return Ok(Some(order));
    }
    if order.status != OrderStatus::PendingPayment
        || (release == Release::Expired && order.expires_at > now)
    {
        return Ok(None);
    }
    let changed = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(status.as_str()))
        .col_expr(order::Column::UpdatedAt, Expr::value(now))
        .col_expr(order::Column::ReleasedBy, Expr::value(token))
        .filter(order::Column::Id.eq(id.as_str()))
        .filter(order::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
        .exec(&**tx)
        .await?;
    if changed.rows_affected != 1 {
        return Err(no_row("the order's status"));
    }
    give_back_quota(&**tx, &order.user_id, order.product_id, order.quantity).await?;
    inventory_ledger::Entity::insert_many(allocation_ledger_rows(
        order.product_id,
        &order.allocation,
        1,
        reason,
        order.id.as_str(),
        now,
    ))
    .exec_without_returning(&**tx)
    .await?;
    return_allocation(&**tx, order.product_id, &order.allocation).await?;
    order.status = status;
    order.updated_at = now;
    Ok(Some(order))
}

/// A unique violation on none of the named keys: the order id itself.
pub(super) fn is_primary_key_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) && duplicate_key(err).is_none()
}

/// Retries `attempt` while it fails transiently — a deadlock, a serialization
/// failure, a lost connection — but not after a lock wait or a statement that timed
/// out: the database has waited its limit already.
pub(super) async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if tries < TRANSIENT_ATTEMPTS && is_transient(&e) && !waited_out(&e) => {
                tracing::debug!(error = %Chain(&e), "retrying a transaction");
                tokio::time::sleep(std::time::Duration::from_millis(5 * tries as u64)).await;
            }
            other => return other,
        }
    }
}
