//! `flash-sale-mq-probe`: proves a RocketMQ name server and broker carry a message —
//! sends one placement task on a fresh topic through flash-sale's own client and
//! receives it back. `scripts/rocketmq.sh start` returns only after this succeeds.
#![forbid(unsafe_code)]
// The RocketMQ client's futures nest deeply (as its own examples note).
#![recursion_limit = "512"]

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use flash_sale_domain::UserId;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::PlacementQueue;
use flash_sale_domain::order::OrderRequest;
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId};
use flash_sale_domain::product::ProductId;
use flash_sale_infrastructure::rocketmq::{RocketMqSettings, RocketMqTaskQueue};

/// Round trip through RocketMQ.
#[derive(Debug, Parser)]
#[command(name = "flash-sale-mq-probe", version, about)]
struct Args {
    /// The name server.
    #[arg(long, default_value = "127.0.0.1:9876")]
    namesrv: String,
    /// Give up after this long.
    #[arg(long, default_value = "90s", value_parser = humantime::parse_duration)]
    within: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let deadline = started + args.within;
    let name = format!("fs_probe{}", uuid::Uuid::now_v7().simple());
    let settings = RocketMqSettings {
        namesrv: args.namesrv.clone(),
        topic: name.clone(),
        group: name,
        consume_threads: 1,
        batch_size: 1,
        consume: true,
        capacity: 16,
    };
    let queue = loop {
        match RocketMqTaskQueue::start(&settings).await {
            Ok(queue) => break queue,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for RocketMQ: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("RocketMQ did not start in time"),
        }
    };
    let task = Placement::queue(NewPlacement {
        id: PlacementId::generate(),
        user_id: UserId::parse("probe").context("user")?,
        event_id: EventId(0),
        request: OrderRequest {
            product_id: ProductId(0),
            quantity: 1,
        },
        allocation: flash_sale_domain::allocation::Allocation::single(0, 1),
        unit_price: 0,
        idempotency_key: None,
        now: chrono::Utc::now(),
    })
    .context("task")?;
    let result = async {
        loop {
            match queue.publish(&task).await {
                Ok(()) => {
                    eprintln!("sent after {:.1}s", started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("send failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e).context("could not send"),
            }
        }
        while Instant::now() < deadline {
            let received = queue.next_batch(1, Duration::from_secs(1)).await;
            if received.iter().any(|p| p.id == task.id) {
                println!(
                    "RocketMQ at {} carried a message (received after {:.1}s)",
                    args.namesrv,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
        }
        anyhow::bail!("the message did not come back within {:?}", args.within)
    }
    .await;
    queue.shutdown().await;
    result
}
