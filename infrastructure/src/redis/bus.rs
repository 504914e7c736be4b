//! [`NoticeBus`] on Redis pub/sub: one channel per key prefix; every instance
//! subscribes and acts on each notice (its own included). A lost subscription is
//! re-established with a short back-off; meanwhile local caches catch up when their
//! entries expire.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::Chain;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{GatewayError, Notice, NoticeBus};
use flash_sale_domain::product::ProductId;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Redis;

/// Publishes and receives notices on Redis pub/sub.
#[derive(Debug, Clone)]
pub struct RedisNoticeBus {
    redis: Redis,
}

/// The wire form of a notice: `event:7`, `product:9:7`, `sold_out_cleared:9`.
fn encode(notice: Notice) -> String {
    match notice {
        Notice::Event(id) => format!("event:{}", id.0),
        Notice::Product { id, event_id } => format!("product:{}:{}", id.0, event_id.0),
        Notice::SoldOutCleared(id) => format!("sold_out_cleared:{}", id.0),
    }
}

fn decode(text: &str) -> Option<Notice> {
    let mut parts = text.split(':');
    let kind = parts.next()?;
    let first: i64 = parts.next()?.parse().ok()?;
    match kind {
        "event" => Some(Notice::Event(EventId(first))),
        "product" => Some(Notice::Product {
            id: ProductId(first),
            event_id: EventId(parts.next()?.parse().ok()?),
        }),
        "sold_out_cleared" => Some(Notice::SoldOutCleared(ProductId(first))),
        _ => None,
    }
}

impl RedisNoticeBus {
    /// A bus over `redis`.
    pub fn new(redis: Redis) -> Self {
        Self { redis }
    }

    fn channel(&self) -> String {
        format!("{}:notices", self.redis.prefix())
    }

    /// Receives notices until `stop` turns true, handing each to `handle`.
    pub fn subscribe<F, Fut>(&self, handle: F, mut stop: watch::Receiver<bool>) -> JoinHandle<()>
    where
        F: Fn(Notice) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let client = self.redis.pubsub.clone();
        let channel = self.channel();
        let handle = Arc::new(handle);
        tokio::spawn(async move {
            loop {
                let session = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.subscribe(&channel).await?;
                    tracing::debug!(%channel, "subscribed to notices");
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(text) = message.get_payload::<String>()
                            && let Some(notice) = decode(&text)
                        {
                            handle(notice).await;
                        }
                    }
                    Ok::<(), redis::RedisError>(())
                };
                tokio::select! {
                    result = session => {
                        if let Err(e) = result {
                            tracing::warn!(error = %Chain(&e), "notice subscription lost; reconnecting");
                        }
                    }
                    _ = stop.wait_for(|stop| *stop) => return,
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.wait_for(|stop| *stop) => return,
                }
            }
        })
    }
}

#[async_trait]
impl NoticeBus for RedisNoticeBus {
    async fn publish(&self, notice: Notice) -> Result<(), GatewayError> {
        let mut conn = self.redis.conn();
        self.redis
            .run(
                "publish",
                redis::cmd("PUBLISH")
                    .arg(self.channel())
                    .arg(encode(notice))
                    .query_async::<i64>(&mut conn),
            )
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_survive_the_wire() {
        for notice in [
            Notice::Event(EventId(7)),
            Notice::Product {
                id: ProductId(9),
                event_id: EventId(7),
            },
            Notice::SoldOutCleared(ProductId(9)),
        ] {
            assert_eq!(decode(&encode(notice)), Some(notice));
        }
        assert_eq!(decode("weird:1"), None);
    }
}
