//! Group commit (DESIGN §4): a committer task per write path gathers the writes
//! waiting at that moment and hands them to one transaction, so that under load an
//! order costs a fraction of a commit. There is no idle wait: a lone write is taken
//! at once, and batches form only while a transaction is running.
//!
//! Every waiter is answered only after the transaction that carries its write has
//! ended. A batch that does not commit whole (a guard refused one item, a duplicate
//! key) is written again item by item, so a refusal touches only its own item.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::join_all;
use sea_orm::{DbErr, RuntimeErr};
use tokio::sync::{mpsc, oneshot};

use super::error::is_transient;
use super::order_write::with_retries;

/// The most writes one transaction carries.
pub(super) const MAX_BATCH: usize = 128;

type Waiting<T, A> = (T, oneshot::Sender<Result<A, DbErr>>);

/// A committer: [`Committer::submit`] hands it one write and waits for its answer.
pub(super) struct Committer<T, A> {
    queue: mpsc::UnboundedSender<Waiting<T, A>>,
}

impl<T, A> std::fmt::Debug for Committer<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, A: Send + 'static> Committer<T, A> {
    /// Spawns the committer task: it takes up to [`MAX_BATCH`] waiting writes, runs
    /// `write` on them (which answers each, in order) and answers every waiter;
    /// `writes` names the path in the batch-size histogram.
    pub(super) fn spawn<F, Fut>(writes: &'static str, write: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<A, DbErr>>> + Send,
    {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Waiting<T, A>>();
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut taken, MAX_BATCH).await > 0 {
                let (items, waiters): (Vec<T>, Vec<_>) = taken.drain(..).unzip();
                metrics::histogram!("flash_sale_group_commit_size", "writes" => writes)
                    .record(f64::from(u32::try_from(items.len()).unwrap_or(u32::MAX)));
                // A panic in one batch fails its waiters (their senders drop), not
                // the committer.
                let Ok(answers) = AssertUnwindSafe(write(items)).catch_unwind().await else {
                    tracing::error!(writes, "a group commit panicked");
                    continue;
                };
                for (waiter, answer) in waiters.into_iter().zip(answers) {
                    // A waiter that is gone (its request timed out) needs no answer.
                    let _ = waiter.send(answer);
                }
            }
        });
        Self { queue }
    }

    /// Hands `item` to the committer and waits until the transaction carrying it
    /// has ended.
    pub(super) async fn submit(&self, item: T) -> Result<A, DbErr> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((item, answer))
            .map_err(|_| DbErr::Custom("the committer has stopped".into()))?;
        answered
            .await
            .map_err(|_| DbErr::Custom("the group commit failed".into()))?
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
