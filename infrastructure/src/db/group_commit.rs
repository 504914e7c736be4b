//! Group commit (DESIGN §4): a committer task per write path gathers the writes
//! waiting at that moment and hands them to one transaction, so that under load an
//! order costs a fraction of a commit. There is no idle wait: a lone write is taken
//! at once, and batches form only while a transaction is running.
//!
//! Every waiter is answered only after the transaction that carries its write has
//! ended. A batch that does not commit whole (a guard refused one item, a duplicate
//! key) is written again item by item, so a refusal touches only its own item.

use futures::future::join_all;
use sea_orm::{DbErr, RuntimeErr};

use crate::batching::{Batcher, Stopped};

use super::error::is_transient;
use super::order_write::with_retries;

/// A committer of database writes: a [`crate::batching::Batcher`] whose answers are
/// database results.
pub(super) type Committer<T, A> = Batcher<T, A, DbErr>;

impl Stopped for DbErr {
    fn stopped(what: &'static str) -> Self {
        DbErr::Custom(what.into())
    }
}

/// Writes `items` in one transaction (`all`, retried while it fails transiently);
/// when that commits, every item is `done`. When it does not — a guard refused an
/// item, a key is taken — each item is written on its own (`one`), so only the
/// refused ones are refused. A batch that keeps failing for want of a database
/// answers every item with that failure.
pub(super) async fn all_or_each<'a, T, A, AllFut, OneFut>(
    items: &'a [T],
    done: A,
    all: impl Fn(&'a [T]) -> AllFut,
    one: impl Fn(&'a T) -> OneFut,
) -> Vec<Result<A, DbErr>>
where
    A: Clone,
    AllFut: Future<Output = Result<bool, DbErr>>,
    OneFut: Future<Output = Result<A, DbErr>>,
{
    if items.len() > 1 {
        match with_retries(|| all(items)).await {
            Ok(true) => return vec![Ok(done); items.len()],
            Ok(false) => {}
            Err(e) if is_transient(&e) => return transient_for_each(&e, items.len()),
            Err(e) => tracing::debug!(error = %e, "a group commit is written item by item"),
        }
    }
    join_all(items.iter().map(|item| with_retries(|| one(item)))).await
}

/// The same transient failure for each of `count` waiters (a `DbErr` is not `Clone`).
fn transient_for_each<A>(err: &DbErr, count: usize) -> Vec<Result<A, DbErr>> {
    (0..count)
        .map(|_| Err(DbErr::Conn(RuntimeErr::Internal(err.to_string()))))
        .collect()
}
