//! Batching without idle waits: a task that takes every request waiting at that moment
//! (up to [`MAX_BATCH`]), serves them with one call — one transaction (DESIGN §4
//! "Group commit"), one broker message — and answers each waiter. A lone request is
//! taken at once; batches form only while the previous call runs.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

/// The most requests one call carries.
pub(crate) const MAX_BATCH: usize = 128;

/// The error a waiter gets when the batcher is gone or its batch panicked.
pub(crate) trait Stopped {
    /// The error, saying `what`.
    fn stopped(what: &'static str) -> Self;
}

type Waiting<T, A, E> = (T, oneshot::Sender<Result<A, E>>);

/// A batcher: [`Batcher::submit`] hands it one request and waits for its answer.
pub(crate) struct Batcher<T, A, E> {
    queue: mpsc::UnboundedSender<Waiting<T, A, E>>,
}

impl<T, A, E> std::fmt::Debug for Batcher<T, A, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, A: Send + 'static, E: Stopped + Send + 'static> Batcher<T, A, E> {
    /// Spawns the batcher task: it takes up to [`MAX_BATCH`] waiting requests, runs
    /// `serve` on them (which answers each, in order) and answers every waiter;
    /// `writes` names the path in the batch-size histogram
    /// (`flash_sale_group_commit_size{writes}`).
    pub(crate) fn spawn<F, Fut>(writes: &'static str, serve: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<Result<A, E>>> + Send,
    {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Waiting<T, A, E>>();
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut taken, MAX_BATCH).await > 0 {
                let (items, waiters): (Vec<T>, Vec<_>) = taken.drain(..).unzip();
                metrics::histogram!("flash_sale_group_commit_size", "writes" => writes)
                    .record(f64::from(u32::try_from(items.len()).unwrap_or(u32::MAX)));
                // A panic in one batch fails its waiters (their senders drop), not
                // the batcher.
                let Ok(answers) = AssertUnwindSafe(serve(items)).catch_unwind().await else {
                    tracing::error!(writes, "a batch panicked");
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

    /// Hands `item` to the batcher and waits until the call carrying it has ended.
    pub(crate) async fn submit(&self, item: T) -> Result<A, E> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send((item, answer))
            .map_err(|_| E::stopped("the batcher has stopped"))?;
        answered
            .await
            .map_err(|_| E::stopped("the batch carrying this request failed"))?
    }
}
