//! The consumer's transactions' bodies: a whole batch (placement rows locked and
//! claimed in one update — or, for placements recorded in Redis that have no row yet,
//! inserted already `succeeded` — then the orders as one group commit writes them) or
//! one placement on its own, each order taking its units where its placement row says
//! now (where it was reserved, when it has no row).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{Fulfil, Fulfilled};
use flash_sale_domain::order::OrderError;
use flash_sale_domain::placement::PlacementStatus;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};

use super::entity::placement;
use super::order_gateway::stored_allocation;
use super::order_write::{Placed, place_all_in, place_in};
use super::placement_rows::placement_row;
use super::stock_rows::{Sql, locked};
use super::{Database, WriteTx};

const QUEUED: &str = "queued";

/// The placement id of an async order.
fn placement_of(item: &Fulfil) -> Result<&str, DbErr> {
    item.order
        .placement_id
        .as_deref()
        .ok_or_else(|| DbErr::Custom("an async order needs its placement id".into()))
}

/// PostgreSQL: the statement that makes the rest of the consumer's transaction find
/// its rows by key, whatever the planner believes about the tables.
///
/// A sale starts on empty tables that nobody has analysed yet (autovacuum looks a
/// minute or more later). The planner then guesses a table's rows from its pages and
/// a default width per column, about a tenth of the rows a growing placements table
/// really holds, and for a batch of 64 ids a sequential scan looked cheaper than 64
/// index probes: in the first 12 s of a bench run the consumer scanned placements 572
/// times (33 million rows) and persisted a tenth of what was accepted. A lookup of
/// at most a batch of primary keys is never cheaper as a scan of a table that can
/// grow, so the consumer's transactions do without sequential scans (a statement with
/// no index to use still runs as a scan).
fn by_key_only(backend: DbBackend) -> Option<sea_orm::Statement> {
    (backend == DbBackend::Postgres)
        .then(|| sea_orm::Statement::from_string(backend, "SET LOCAL enable_seqscan = off"))
}

/// Runs [`by_key_only`] where it applies: first in a transaction that looks rows up
/// by id.
pub(super) async fn look_up_by_key(
    tx: &impl ConnectionTrait,
    backend: DbBackend,
) -> Result<(), DbErr> {
    if let Some(statement) = by_key_only(backend) {
        tx.execute_raw(statement).await?;
    }
    Ok(())
}

/// The batch's placement rows, locked (see [`queued_allocations`]).
fn queued_rows(backend: DbBackend, ids: &[&str]) -> sea_orm::Select<placement::Entity> {
    locked(
        placement::Entity::find().filter(placement::Column::Id.is_in(ids.iter().copied())),
        backend,
    )
    .order_by_asc(placement::Column::Id)
}

/// Locks the batch's placement rows and reads where the queued ones' units are now:
/// placement id → allocation (a re-arrangement may have moved them since the task was
/// sent), and the ids of every row found. Rows no longer queued are left out of the
/// first.
///
/// The rows are found by id alone and their status is checked here: with `status =
/// 'queued'` in the statement, PostgreSQL (whose statistics lag behind a table that
/// grows by thousands of rows a second in a sale) chose the status index and read
/// every queued placement for each batch — a consumer that fell behind slowed down
/// the more it fell behind.
async fn queued_allocations(
    tx: &WriteTx,
    backend: DbBackend,
    ids: &[&str],
) -> Result<(HashMap<String, Allocation>, HashSet<String>), DbErr> {
    look_up_by_key(&**tx, backend).await?;
    let rows = queued_rows(backend, ids).all(&**tx).await?;
    let present = rows.iter().map(|row| row.id.clone()).collect();
    let queued = rows
        .into_iter()
        .filter(|row| row.status == QUEUED)
        .map(|row| {
            let allocation =
                stored_allocation(row.bucket_no, row.quantity, row.bucket_split.as_deref())
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
            Ok((row.id, allocation))
        })
        .collect::<Result<_, DbErr>>()?;
    Ok((queued, present))
}

/// `queued → succeeded` for every placement of `batch` in one update; whether every
/// row was there. Only after [`queued_allocations`] has locked the rows and seen them
/// queued (the lock, or SQLite's single writer, keeps them so), which is why the
/// statement names them by id alone (see there).
async fn claim_all(tx: &WriteTx, backend: DbBackend, batch: &[&Fulfil]) -> Result<bool, DbErr> {
    if batch.is_empty() {
        return Ok(true);
    }
    let claims = batch
        .iter()
        .map(|item| {
            Ok((
                placement_of(item)?,
                item.order.id.as_str(),
                item.order.created_at,
            ))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    let claimed = tx.execute_raw(claim_statement(backend, &claims)).await?;
    Ok(claimed.rows_affected() == batch.len() as u64)
}

/// `UPDATE placements` to `succeeded` with each one's order id and time, by id.
fn claim_statement(
    backend: DbBackend,
    claims: &[(&str, &str, DateTime<Utc>)],
) -> sea_orm::Statement {
    let mut claim = Sql::new(
        backend,
        "UPDATE placements SET status = 'succeeded', order_id = CASE id",
    );
    for (placement, order, _) in claims {
        claim.push(" WHEN ").value(*placement);
        claim.push(" THEN ").value(*order);
    }
    claim.push(" END, updated_at = CASE id");
    for (placement, _, at) in claims {
        claim.push(" WHEN ").value(*placement);
        claim.push(" THEN ").value(*at);
    }
    claim.push(" END WHERE id IN (");
    for (i, (placement, _, _)) in claims.iter().enumerate() {
        if i > 0 {
            claim.push(", ");
        }
        claim.value(*placement);
    }
    claim.push(")");
    claim.statement()
}

/// The statements a consumer batch finds its placements with, for the placement ids
/// of `claims` (with the order id each becomes): what its transaction runs first (see
/// [`by_key_only`]), then the locking read and the claim; for tests of the database's
/// plans.
#[doc(hidden)]
pub fn consumer_lookups(
    backend: DbBackend,
    claims: &[(&str, &str, DateTime<Utc>)],
) -> (Option<sea_orm::Statement>, [sea_orm::Statement; 2]) {
    let ids: Vec<&str> = claims.iter().map(|(id, _, _)| *id).collect();
    (
        by_key_only(backend),
        [
            queued_rows(backend, &ids).build(backend),
            claim_statement(backend, claims),
        ],
    )
}

/// The batch's orders with their units where their placement rows say, or — for a
/// placement with no row yet ([`Fulfil::unwritten`]) — where it was reserved; `None`
/// when a row is no longer queued, or a placement has no row and no record.
fn current_orders(
    batch: &[Fulfil],
    (allocations, present): &(HashMap<String, Allocation>, HashSet<String>),
) -> Result<Option<Vec<Fulfil>>, DbErr> {
    let mut items = Vec::with_capacity(batch.len());
    for item in batch {
        let id = placement_of(item)?;
        let mut item = item.clone();
        match (allocations.get(id), &item.unwritten) {
            (Some(allocation), _) => {
                item.order.allocation = allocation.clone();
                item.unwritten = None;
            }
            (None, Some(unwritten)) if !present.contains(id) => {
                item.order.allocation = unwritten.allocation.clone();
            }
            _ => return Ok(None),
        }
        items.push(item);
    }
    Ok(Some(items))
}

/// Claims the rows of the batch's placements that have one, and writes the rows of
/// those that have none, already `succeeded` (a plain insert: if someone wrote one
/// meanwhile, the transaction fails and is tried again by that row). Whether every
/// placement is the batch's now.
async fn claim_or_write(tx: &WriteTx, backend: DbBackend, batch: &[Fulfil]) -> Result<bool, DbErr> {
    let (new, claimed): (Vec<&Fulfil>, Vec<&Fulfil>) =
        batch.iter().partition(|item| item.unwritten.is_some());
    if !claim_all(tx, backend, &claimed).await? {
        return Ok(false);
    }
    if !new.is_empty() {
        let rows = new
            .iter()
            .filter_map(|item| {
                let mut row = item.unwritten.clone()?;
                row.allocation = item.order.allocation.clone();
                row.status = PlacementStatus::Succeeded(item.order.id.clone());
                row.updated_at = item.order.created_at;
                Some(placement_row(&row))
            })
            .collect::<Vec<_>>();
        placement::Entity::insert_many(rows)
            .exec_without_returning(&**tx)
            .await?;
    }
    Ok(true)
}

/// The whole batch in one transaction: the placement rows locked and claimed, summed
/// bucket decrements, summed quotas, then every order and ledger row in one insert
/// each. `false` (rolled back) when any guard says no or a placement is no longer
/// queued.
pub(super) async fn batch_in(tx: &WriteTx, db: &Database, batch: &[Fulfil]) -> Result<bool, DbErr> {
    let ids = batch
        .iter()
        .map(placement_of)
        .collect::<Result<Vec<_>, _>>()?;
    if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
        return Ok(false);
    }
    let rows = queued_allocations(tx, db.backend(), &ids).await?;
    let Some(batch) = current_orders(batch, &rows)? else {
        return Ok(false);
    };
    if !claim_or_write(tx, db.backend(), &batch).await? {
        return Ok(false);
    }
    let orders: Vec<_> = batch.iter().map(|i| (&i.order, i.limit)).collect();
    place_all_in(tx, db.backend(), &orders).await
}

/// How a placement that is no longer queued ended (one that is gone never became an
/// order).
async fn resolved_as(tx: &WriteTx, id: &str) -> Result<Fulfilled, DbErr> {
    let status: Option<String> = placement::Entity::find_by_id(id.to_owned())
        .select_only()
        .column(placement::Column::Status)
        .into_tuple()
        .one(&**tx)
        .await?;
    Ok(Fulfilled::AlreadyResolved {
        succeeded: status.as_deref() == Some("succeeded"),
    })
}

/// One placement on its own: its row locked and read, claimed, then the order
/// transaction with the units where the row says.
pub(super) async fn one_in(tx: &WriteTx, db: &Database, item: &Fulfil) -> Result<Fulfilled, DbErr> {
    let id = placement_of(item)?;
    let rows = queued_allocations(tx, db.backend(), &[id]).await?;
    let Some(current) = current_orders(std::slice::from_ref(item), &rows)? else {
        return resolved_as(tx, id).await;
    };
    let item = &current[0];
    if !claim_or_write(tx, db.backend(), std::slice::from_ref(item)).await? {
        return resolved_as(tx, id).await;
    }
    Ok(
        match place_in(tx, db.backend(), &item.order, item.limit).await? {
            Placed::Done => Fulfilled::Placed,
            Placed::SoldOut => Fulfilled::Rejected(OrderError::SoldOut),
            Placed::OverLimit => Fulfilled::Rejected(OrderError::LimitExceeded {
                limit: item.limit.get(),
            }),
        },
    )
}
