//! [`PlacementQueue`] on Apache RocketMQ (rocketmq-client-rust): a producer sends the
//! placements waiting to be published at that moment as one message (keys = their
//! placement ids, body = a JSON array of them; under load one send carries many, a
//! lone placement is sent at once) and a push consumer hands the placements of the
//! messages it receives to this instance's consumer loop. Each publisher is answered
//! only after the broker acknowledged the message carrying its placement.
//!
//! Delivery is at least once; the consumer is idempotent. A message is acknowledged
//! once its placements are handed over in process: the placement rows are durable,
//! and the sweeper runs again any placement whose task a crash dropped after that.
//!
//! The client runs on a runtime of its own ([`RuntimeOwner`]), next to the service's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, PlacementQueue};
use flash_sale_domain::placement::Placement;
use flash_sale_domain::{Cause, Chain};
use rocketmq_client_rust::{
    ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer, MessageListenerConcurrently,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::SendStatus;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner, ShutdownDeadline};
use tokio::sync::{Mutex, mpsc};

use crate::batching::{Batcher, Stopped};
use crate::task::PlacementTask;

/// How long the client may take to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How the service talks to RocketMQ.
#[derive(Debug, Clone)]
pub struct RocketMqSettings {
    /// Name server, `host:port`.
    pub namesrv: String,
    /// The placement topic.
    pub topic: String,
    /// Producer group (`<group>-producer`) and consumer group (`<group>-consumer`).
    pub group: String,
    /// Consume threads of the push consumer (keep it small on few cores).
    pub consume_threads: u32,
    /// Messages per listener call.
    pub batch_size: u32,
    /// Whether this instance subscribes (`mq.consume`).
    pub consume: bool,
    /// Tasks handed over but not yet consumed, at most.
    pub capacity: usize,
}

/// The placements of a message body: a JSON array of tasks (or one task, as sent
/// before sends were batched); `None` when it is neither or a task is malformed.
fn placements_of(body: &[u8]) -> Option<Vec<Placement>> {
    let tasks = match serde_json::from_slice::<Vec<PlacementTask>>(body) {
        Ok(tasks) => tasks,
        Err(_) => vec![serde_json::from_slice::<PlacementTask>(body).ok()?],
    };
    tasks
        .into_iter()
        .map(PlacementTask::into_placement)
        .collect()
}

/// Hands received messages to the consumer loop; a full hand-off asks the broker to
/// deliver again later.
struct HandOff {
    sender: mpsc::Sender<Placement>,
}

impl MessageListenerConcurrently for HandOff {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> rocketmq_client_rust::ClientResult<ConsumeConcurrentlyStatus> {
        for msg in msgs {
            let Some(body) = msg.body() else { continue };
            let Some(placements) = placements_of(&body) else {
                tracing::warn!("dropping a message that holds no placement");
                continue;
            };
            for placement in placements {
                // Handed over in part: the message comes again, and the consumer finds
                // the placements it already resolved resolved.
                if self.sender.try_send(placement).is_err() {
                    return Ok(ConsumeConcurrentlyStatus::ReconsumeLater);
                }
            }
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// The placement queue on RocketMQ.
pub struct RocketMqTaskQueue {
    topic: String,
    /// Sends what is waiting as one message.
    sender: Batcher<PlacementTask, (), GatewayError>,
    consumer: Mutex<Option<DefaultMQPushConsumer>>,
    receiver: Mutex<mpsc::Receiver<Placement>>,
    client: Arc<ClientRuntime>,
    owner: std::sync::Mutex<Option<RuntimeOwner>>,
    _telemetry: rocketmq_observability::TelemetryRuntimeGuard,
}

impl std::fmt::Debug for RocketMqTaskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocketMqTaskQueue")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(format!("RocketMQ {what}: {e}").into())
}

impl Stopped for GatewayError {
    fn stopped(what: &'static str) -> Self {
        GatewayError::Unavailable(format!("RocketMQ send: {what}").into())
    }
}

/// Sends `tasks` as one message (keys = their ids) and answers each with the
/// broker's acknowledgement.
async fn send_together(
    producer: &DefaultMQProducer,
    topic: &str,
    tasks: &[PlacementTask],
) -> Vec<Result<(), GatewayError>> {
    let sent = async {
        let body = serde_json::to_vec(tasks)
            .map_err(|e| GatewayError::Internal(Cause::with_source("placement tasks", e)))?;
        let message = Message::builder()
            .topic(topic)
            .keys(tasks.iter().map(|t| t.id.clone()).collect())
            .body(body)
            .build()
            .map_err(|e| GatewayError::Internal(format!("a placement message: {e}").into()))?;
        match Box::pin(producer.send(message)).await {
            Ok(Some(result)) if result.send_status == SendStatus::SendOk => Ok(()),
            Ok(Some(result)) => Err(unavailable("send", format!("{:?}", result.send_status))),
            Ok(None) => Err(unavailable("send", "no result")),
            Err(e) => Err(unavailable("send", e)),
        }
    }
    .await;
    match sent {
        Ok(()) => tasks.iter().map(|_| Ok(())).collect(),
        Err(e) => {
            let internal = matches!(e, GatewayError::Internal(_));
            let text = Chain(&e).to_string();
            tasks
                .iter()
                .map(|_| {
                    let cause = text.clone().into();
                    Err(if internal {
                        GatewayError::Internal(cause)
                    } else {
                        GatewayError::Unavailable(cause)
                    })
                })
                .collect()
        }
    }
}

impl RocketMqTaskQueue {
    /// Starts the client, makes sure the topic exists and, when `settings.consume`,
    /// subscribes to it.
    ///
    /// # Errors
    /// `Unavailable` when the name server or the broker cannot be reached.
    pub async fn start(settings: &RocketMqSettings) -> Result<Self, GatewayError> {
        let owner = RuntimeOwner::plan(RuntimeConfig {
            worker_threads: 2,
            thread_name: "rocketmq-client".into(),
            ..RuntimeConfig::default()
        })
        .map_err(|e| unavailable("runtime configuration", e))?
        .build()
        .map_err(|e| unavailable("runtime", e))?;
        let telemetry = rocketmq_observability::TelemetryRuntimeGuard::noop();
        let client = ClientRuntime::try_new(
            owner.root_context().component("flash-sale"),
            ClientRuntimeConfig::default(),
            telemetry.handle(),
        )
        .map_err(|e| unavailable("client runtime", e))?;
        let mut producer = DefaultMQProducer::builder(client.clone())
            .producer_group(format!("{}-producer", settings.group))
            .name_server_addr(settings.namesrv.clone())
            .send_msg_timeout(3_000)
            .build();
        producer
            .start()
            .await
            .map_err(|e| unavailable("producer start", e))?;
        producer
            .create_topic("TBW102", &settings.topic, 4, HashMap::new())
            .await
            .map_err(|e| unavailable("topic creation", e))?;
        let (sender, receiver) = mpsc::channel(settings.capacity.max(1));
        let consumer = if settings.consume {
            let mut consumer = DefaultMQPushConsumer::builder(client.clone())
                .consumer_group(format!("{}-consumer", settings.group))
                .name_server_addr(settings.namesrv.clone())
                .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
                .consume_thread_min(settings.consume_threads.max(1))
                .consume_thread_max(settings.consume_threads.max(1))
                .consume_message_batch_max_size(settings.batch_size.max(1))
                .max_reconsume_times(3)
                .build();
            consumer
                .subscribe(settings.topic.clone(), "*")
                .await
                .map_err(|e| unavailable("subscribe", e))?;
            consumer.register_message_listener_concurrently(HandOff { sender });
            consumer
                .start()
                .await
                .map_err(|e| unavailable("consumer start", e))?;
            Some(consumer)
        } else {
            None
        };
        let sender = {
            let topic = settings.topic.clone();
            Batcher::spawn("placement_tasks", move |tasks: Vec<PlacementTask>| {
                let (producer, topic) = (producer.clone(), topic.clone());
                async move { send_together(&producer, &topic, &tasks).await }
            })
        };
        Ok(Self {
            topic: settings.topic.clone(),
            sender,
            consumer: Mutex::new(consumer),
            receiver: Mutex::new(receiver),
            client,
            owner: std::sync::Mutex::new(Some(owner)),
            _telemetry: telemetry,
        })
    }

    /// Stops consuming and closes the client.
    pub async fn shutdown(&self) {
        if let Some(mut consumer) = self.consumer.lock().await.take() {
            consumer.shutdown().await;
        }
        // Its default deadline is 30 s, mostly spent waiting for tasks that never end.
        let report = self
            .client
            .shutdown_until(ShutdownDeadline::after(SHUTDOWN_WAIT))
            .await;
        tracing::debug!(healthy = report.is_healthy(), "RocketMQ client stopped");
        let owner = self
            .owner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // The client's background tasks (request scans, fault detection) do not end on
        // their own: waiting for them costs the owner's whole shutdown timeout. The
        // client is shut down above; stop what is left at once.
        if let Some(owner) = owner {
            let report = owner.shutdown_background();
            tracing::debug!(
                healthy = report.is_healthy(),
                "RocketMQ client runtime stopped"
            );
        }
    }
}

#[async_trait]
impl PlacementQueue for RocketMqTaskQueue {
    async fn publish(&self, task: &Placement) -> Result<(), GatewayError> {
        self.sender.submit(PlacementTask::from(task)).await
    }

    async fn next_batch(&self, max: usize, wait: Duration) -> Vec<Placement> {
        crate::embedded::take_batch(&mut *self.receiver.lock().await, max, wait).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use flash_sale_domain::UserId;
    use flash_sale_domain::allocation::Allocation;
    use flash_sale_domain::event::EventId;
    use flash_sale_domain::order::{IdempotencyKey, OrderRequest};
    use flash_sale_domain::placement::{NewPlacement, PlacementId};
    use flash_sale_domain::product::ProductId;

    use super::*;

    fn placement(user: &str) -> Placement {
        Placement::queue(NewPlacement {
            id: PlacementId::generate(),
            user_id: UserId::parse(user).expect("user"),
            event_id: EventId(1),
            request: OrderRequest {
                product_id: ProductId(2),
                quantity: 2,
            },
            allocation: Allocation::parse("3:1,5:1").expect("parts"),
            unit_price: 100,
            idempotency_key: Some(IdempotencyKey::parse("k-1").expect("key")),
            now: Utc::now(),
        })
        .expect("a placement")
    }

    #[test]
    fn a_message_carries_every_placement_sent_together() {
        let sent = [placement("a"), placement("b")];
        let tasks: Vec<PlacementTask> = sent.iter().map(PlacementTask::from).collect();
        let body = serde_json::to_vec(&tasks).expect("body");
        let got = placements_of(&body).expect("placements");
        assert_eq!(got.len(), 2);
        for (got, sent) in got.iter().zip(&sent) {
            assert_eq!(got.id, sent.id);
            assert_eq!(got.user_id, sent.user_id);
            assert_eq!(got.allocation, sent.allocation);
            assert_eq!(got.idempotency_key, sent.idempotency_key);
            assert_eq!(got.request_fingerprint, sent.request_fingerprint);
        }
    }

    #[test]
    fn a_message_of_one_placement_as_sent_before_batching_is_still_read() {
        let sent = placement("a");
        let body = serde_json::to_vec(&PlacementTask::from(&sent)).expect("body");
        let got = placements_of(&body).expect("placements");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, sent.id);
    }

    #[test]
    fn a_body_that_is_no_placement_is_refused() {
        assert!(placements_of(b"{\"hello\":1}").is_none());
        assert!(placements_of(b"[{\"id\":\"x\"}]").is_none());
        assert!(placements_of(b"not json").is_none());
    }
}
