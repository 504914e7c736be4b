//! The re-lay transaction behind [`ProductGateway::relay`]: an optional re-split of a
//! product's unsold units over a new number of buckets, then a read of its stock with
//! the rows locked, handed to the stock ledger before the commit.
//!
//! Locks are taken in the order the consumer takes them (queued placements, then
//! buckets), so the two never deadlock; a deadlock with a late return is retried.
//!
//! [`ProductGateway::relay`]: flash_sale_domain::gateway::ProductGateway::relay

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use flash_sale_domain::Chain;
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{GatewayError, InFlight, Relay, StockState, StockStateSink};
use flash_sale_domain::ledger::LedgerReason;
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::split_evenly;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
};

use super::entity::{inventory_ledger, order, placement, product, purchase_quota, stock_bucket};
use super::error::is_transient;
use super::event_gateway::corrupt;
use super::order_gateway::stored_allocation;
use super::product_gateway::{bucket_to_domain, ledger_row, to_domain};
use super::stock_rows::{i32_of, locked};
use super::{Database, WriteTx, db_error};

/// How often a re-lay that hit a deadlock is tried again.
const ATTEMPTS: usize = 3;

/// Why one attempt of the re-lay did not commit.
enum Failed {
    Db(DbErr),
    Sink(GatewayError),
    NotFound,
}

impl From<DbErr> for Failed {
    fn from(e: DbErr) -> Self {
        Self::Db(e)
    }
}

/// Runs the re-lay (see the trait's docs), retrying deadlocks.
pub(super) async fn relay(
    db: &Database,
    id: ProductId,
    relay: Relay,
    now: DateTime<Utc>,
    sink: &dyn StockStateSink,
) -> Result<flash_sale_domain::product::Product, GatewayError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(db, id, relay, now, sink).await {
            Ok(product) => return Ok(product),
            Err(Failed::Db(e)) if tries < ATTEMPTS && is_transient(&e) => {
                tracing::debug!(error = %Chain(&e), "retrying a re-lay");
                tokio::time::sleep(std::time::Duration::from_millis(20 * tries as u64)).await;
            }
            Err(Failed::Db(e)) => return Err(db_error(e)),
            Err(Failed::Sink(e)) => return Err(e),
            Err(Failed::NotFound) => return Err(GatewayError::NotFound),
        }
    }
}

async fn attempt(
    db: &Database,
    id: ProductId,
    relay: Relay,
    now: DateTime<Utc>,
    sink: &dyn StockStateSink,
) -> Result<flash_sale_domain::product::Product, Failed> {
    let tx = db.begin_write().await?;
    let result = async {
        let queued = queued_rows(&tx, db.backend(), id).await?;
        let mut buckets = bucket_rows(&tx, db.backend(), id).await?;
        if buckets.is_empty() {
            return Err(Failed::NotFound);
        }
        if let Relay::Rebucket { count } = relay {
            rebucket(&tx, id, count.max(1), &buckets, &queued, now).await?;
            buckets = bucket_rows(&tx, db.backend(), id).await?;
        }
        let row = product::Entity::find_by_id(id.0)
            .one(&*tx)
            .await?
            .ok_or(Failed::NotFound)?;
        let state = state(&tx, id, &row, &buckets).await?;
        sink.apply(&state).await.map_err(Failed::Sink)?;
        Ok(state.product)
    }
    .await;
    match result {
        Ok(product) => {
            tx.commit().await?;
            Ok(product)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// The product's queued placements, their rows locked.
async fn queued_rows(
    tx: &WriteTx,
    backend: DbBackend,
    id: ProductId,
) -> Result<Vec<placement::Model>, DbErr> {
    locked(
        placement::Entity::find()
            .filter(placement::Column::ProductId.eq(id.0))
            .filter(placement::Column::Status.eq("queued")),
        backend,
    )
    .order_by_asc(placement::Column::Id)
    .all(&**tx)
    .await
}

/// The product's bucket rows, locked.
async fn bucket_rows(
    tx: &WriteTx,
    backend: DbBackend,
    id: ProductId,
) -> Result<Vec<stock_bucket::Model>, DbErr> {
    locked(
        stock_bucket::Entity::find().filter(stock_bucket::Column::ProductId.eq(id.0)),
        backend,
    )
    .order_by_asc(stock_bucket::Column::BucketNo)
    .all(&**tx)
    .await
}

fn allocation_of(bucket_no: i32, quantity: i32, split: Option<&str>) -> Result<Allocation, DbErr> {
    stored_allocation(bucket_no, quantity, split).map_err(|e| DbErr::Custom(e.to_string()))
}

/// What the ledger is loaded from: buckets, quotas (plus the queued placements' units)
/// and the queued placements as reservations in flight.
async fn state(
    tx: &WriteTx,
    id: ProductId,
    row: &product::Model,
    buckets: &[stock_bucket::Model],
) -> Result<StockState, Failed> {
    let product = to_domain(row).map_err(Failed::Sink)?;
    let queued = placement::Entity::find()
        .filter(placement::Column::ProductId.eq(id.0))
        .filter(placement::Column::Status.eq("queued"))
        .all(&**tx)
        .await?;
    let mut quotas: HashMap<String, u32> = purchase_quota::Entity::find()
        .filter(purchase_quota::Column::ProductId.eq(id.0))
        .filter(purchase_quota::Column::Used.gt(0))
        .all(&**tx)
        .await?
        .into_iter()
        .map(|q| (q.user_id, u32::try_from(q.used).unwrap_or(0)))
        .collect();
    let mut in_flight = Vec::with_capacity(queued.len());
    for p in queued {
        let allocation = allocation_of(p.bucket_no, p.quantity, p.bucket_split.as_deref())?;
        *quotas.entry(p.user_id.clone()).or_default() += allocation.quantity();
        in_flight.push(InFlight {
            token: p.id,
            user_id: UserId::parse(&p.user_id)
                .map_err(|_| Failed::Sink(corrupt("user id", &p.user_id)))?,
            allocation,
        });
    }
    let quotas = quotas
        .into_iter()
        .map(|(user, used)| {
            UserId::parse(&user)
                .map(|u| (u, used))
                .map_err(|_| Failed::Sink(corrupt("user id", &user)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StockState {
        product,
        buckets: buckets.iter().map(bucket_to_domain).collect(),
        quotas,
        in_flight,
    })
}

/// Re-splits the unsold units over `count` buckets (see the trait's docs); `rows` are
/// the locked bucket rows, `queued` the locked queued placements.
async fn rebucket(
    tx: &WriteTx,
    id: ProductId,
    count: u32,
    rows: &[stock_bucket::Model],
    queued: &[placement::Model],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let count_i = i32_of(count);
    let unsold: i64 = rows.iter().map(|b| b.available).sum();
    let share = split_evenly(unsold, count);
    // Sold units per new bucket: its own, plus those of the buckets folded into it.
    let mut sold = vec![0_i64; share.len()];
    for row in rows {
        let target = usize::try_from(row.bucket_no % count_i).unwrap_or(0);
        sold[target] += row.total - row.available;
    }
    fold_orders(tx, id, count, rows, now).await?;
    fold_placements(tx, count, queued, now).await?;
    let mut ledger = Vec::new();
    for row in rows.iter().filter(|r| r.bucket_no >= count_i) {
        if row.available != 0 {
            ledger.push((row.bucket_no, -row.available));
        }
        stock_bucket::Entity::delete_many()
            .filter(stock_bucket::Column::ProductId.eq(id.0))
            .filter(stock_bucket::Column::BucketNo.eq(row.bucket_no))
            .exec(&**tx)
            .await?;
    }
    for (no, (&available, &sold)) in (0_i32..).zip(share.iter().zip(&sold)) {
        let before = rows.iter().find(|r| r.bucket_no == no).map(|r| r.available);
        let model = stock_bucket::ActiveModel {
            product_id: Set(id.0),
            bucket_no: Set(no),
            total: Set(sold + available),
            available: Set(available),
        };
        match before {
            Some(_) => {
                model.update(&**tx).await?;
            }
            None => {
                model.insert(&**tx).await?;
            }
        }
        if before.unwrap_or(0) != available {
            ledger.push((no, available - before.unwrap_or(0)));
        }
    }
    if !ledger.is_empty() {
        let rows = ledger.iter().map(|&(no, delta)| {
            ledger_row(
                id,
                u32::try_from(no).unwrap_or(0),
                delta,
                LedgerReason::Rebalanced,
                &format!("buckets:{count}"),
                now,
            )
        });
        inventory_ledger::Entity::insert_many(rows)
            .exec_without_returning(&**tx)
            .await?;
    }
    product::Entity::update_many()
        .col_expr(product::Column::BucketCount, Expr::value(count_i))
        .col_expr(product::Column::UpdatedAt, Expr::value(now))
        .filter(product::Column::Id.eq(id.0))
        .exec(&**tx)
        .await?;
    Ok(())
}

/// Live orders with units in a removed bucket move them to `bucket_no % count`.
async fn fold_orders(
    tx: &WriteTx,
    id: ProductId,
    count: u32,
    rows: &[stock_bucket::Model],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let count_i = i32_of(count);
    let live = ["pending_payment", "paid"];
    for row in rows.iter().filter(|r| r.bucket_no >= count_i) {
        order::Entity::update_many()
            .col_expr(
                order::Column::BucketNo,
                Expr::value(row.bucket_no % count_i),
            )
            .col_expr(order::Column::UpdatedAt, Expr::value(now))
            .filter(order::Column::ProductId.eq(id.0))
            .filter(order::Column::BucketNo.eq(row.bucket_no))
            .filter(order::Column::BucketSplit.is_null())
            .filter(order::Column::Status.is_in(live))
            .exec(&**tx)
            .await?;
    }
    let split = order::Entity::find()
        .filter(order::Column::ProductId.eq(id.0))
        .filter(order::Column::BucketSplit.is_not_null())
        .filter(order::Column::Status.is_in(live))
        .all(&**tx)
        .await?;
    for o in split {
        let allocation = allocation_of(o.bucket_no, o.quantity, o.bucket_split.as_deref())?;
        if !allocation.needs_fold(count) {
            continue;
        }
        let folded = allocation.fold(count);
        order::Entity::update_many()
            .col_expr(
                order::Column::BucketNo,
                Expr::value(i32_of(folded.bucket_no())),
            )
            .col_expr(
                order::Column::BucketSplit,
                Expr::value(folded.stored_split()),
            )
            .col_expr(order::Column::UpdatedAt, Expr::value(now))
            .filter(order::Column::Id.eq(o.id))
            .exec(&**tx)
            .await?;
    }
    Ok(())
}

/// Queued placements with units in a removed bucket move them the same way.
async fn fold_placements(
    tx: &WriteTx,
    count: u32,
    queued: &[placement::Model],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for p in queued {
        let allocation = allocation_of(p.bucket_no, p.quantity, p.bucket_split.as_deref())?;
        if !allocation.needs_fold(count) {
            continue;
        }
        let folded = allocation.fold(count);
        placement::Entity::update_many()
            .col_expr(
                placement::Column::BucketNo,
                Expr::value(i32_of(folded.bucket_no())),
            )
            .col_expr(
                placement::Column::BucketSplit,
                Expr::value(folded.stored_split()),
            )
            .col_expr(placement::Column::UpdatedAt, Expr::value(now))
            .filter(placement::Column::Id.eq(p.id.as_str()))
            .exec(&**tx)
            .await?;
    }
    Ok(())
}
