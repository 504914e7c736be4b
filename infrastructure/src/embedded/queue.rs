//! [`PlacementQueue`] in process: a bounded channel. Tasks are not durable here: the
//! placement rows are, and the sweeper re-runs any that a restart dropped.

use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, PlacementQueue};
use flash_sale_domain::placement::Placement;
use tokio::sync::{Mutex, mpsc};

/// The in-process task queue of the embedded mode.
#[derive(Debug)]
pub struct EmbeddedTaskQueue {
    sender: mpsc::Sender<Placement>,
    receiver: Mutex<mpsc::Receiver<Placement>>,
}

impl EmbeddedTaskQueue {
    /// A queue holding at most `capacity` tasks; beyond that, publishing fails (503).
    pub fn new(capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Self {
            sender,
            receiver: Mutex::new(receiver),
        }
    }
}

#[async_trait]
impl PlacementQueue for EmbeddedTaskQueue {
    async fn publish(&self, task: &Placement) -> Result<(), GatewayError> {
        self.sender.try_send(task.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                GatewayError::Unavailable("the placement queue is full".into())
            }
            mpsc::error::TrySendError::Closed(_) => {
                GatewayError::Unavailable("the placement queue is closed".into())
            }
        })
    }

    async fn next_batch(&self, max: usize, wait: Duration) -> Vec<Placement> {
        take_batch(&mut *self.receiver.lock().await, max, wait).await
    }
}

/// Waits up to `wait` for the first task on `receiver`, then takes what is there, up
/// to `max` (with no wait: only what is there).
pub(crate) async fn take_batch(
    receiver: &mut mpsc::Receiver<Placement>,
    max: usize,
    wait: Duration,
) -> Vec<Placement> {
    let mut batch = Vec::with_capacity(max);
    if wait.is_zero() {
        while batch.len() < max {
            match receiver.try_recv() {
                Ok(task) => batch.push(task),
                Err(_) => break,
            }
        }
    } else {
        let _ = tokio::time::timeout(wait, receiver.recv_many(&mut batch, max.max(1))).await;
    }
    batch
}
