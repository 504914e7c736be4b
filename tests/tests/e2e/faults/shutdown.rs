//! SIGTERM: under load the process finishes what it accepted — requests in flight,
//! detached writes, the consumer's batch — loses nothing acknowledged and exits within
//! `server.shutdown_timeout`; and it exits in time even while its database is cut
//! off by a partition.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flash_sale_client::{
    AdminOrderListQry, ClientError, OrderPlaceCmd, PlaceOrderAnswer, StrategyDto,
};
use flash_sale_tests::node::NodeStores;
use flash_sale_tests::proxy::{FaultProxy, target, through};
use flash_sale_tests::{Backend, sale};

use super::settled;

macro_rules! shutdown_tests {
    ($($name:ident: $backend:ident, $strategy:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "spawns the flash-sale binary and needs the stack's servers; run scripts/test-all.sh"]
            async fn $name() {
                terminated_under_load(Backend::$backend, StrategyDto::$strategy).await;
            }
        )*
    };
}

shutdown_tests! {
    sync_on_sqlite_drains_on_sigterm: Sqlite, Sync;
    async_on_sqlite_drains_on_sigterm: Sqlite, Async;
    sync_on_mariadb_redis_drains_on_sigterm: MariaDbRedis, Sync;
    async_on_postgres_redis_drains_on_sigterm: PostgresRedis, Async;
    async_on_mariadb_redis_rocketmq_drains_on_sigterm: MariaDbRedisRocketmq, Async;
}

/// The shutdown budget in these tests.
const SHUTDOWN: Duration = Duration::from_secs(5);

type Answers = Arc<Mutex<Vec<(String, Result<PlaceOrderAnswer, ClientError>)>>>;

async fn terminated_under_load(backend: Backend, strategy: StrategyDto) {
    let mut stores = NodeStores::create(backend).await;
    stores.set("server.shutdown_timeout", "5s");
    stores.set("stock.recovery_after", "3s");
    let node = stores.start().await;
    let (_, p) = sale(&stores.admin(&node), Some(strategy), 5_000, 1, None).await;

    let answers: Answers = Arc::default();
    let buyers: Vec<_> = (0..32)
        .map(|w| {
            let answers = answers.clone();
            let clients: Vec<_> = (0..300)
                .map(|i| {
                    let name = format!("t{w}-{i}");
                    (name.clone(), stores.buyer(&node, &name))
                })
                .collect();
            tokio::spawn(async move {
                let cmd = OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                };
                for (name, client) in clients {
                    let answer = client.place_order(&cmd, Some("once")).await;
                    let gone = matches!(answer, Err(ClientError::Transport(_)));
                    answers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((name, answer));
                    if gone {
                        return;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let took = node
        .terminate(SHUTDOWN + Duration::from_secs(2))
        .await
        .expect("the process exits");
    assert!(
        took <= SHUTDOWN + Duration::from_secs(1),
        "exited after {took:?}"
    );
    for buyer in buyers {
        buyer.await.expect("buyer");
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(PoisonError::into_inner));
    for (name, answer) in &answers {
        assert!(
            matches!(answer, Ok(_) | Err(ClientError::Transport(_)))
                || answer.as_ref().err().and_then(ClientError::status) == Some(503),
            "{name}: {answer:?}"
        );
    }

    // Everything acknowledged is there after a restart; every 202 resolves.
    let node = stores.start().await;
    let mut acknowledged = 0;
    for (name, answer) in &answers {
        let buyer = stores.buyer(&node, name);
        match answer {
            Ok(PlaceOrderAnswer::Created(order)) => {
                acknowledged += 1;
                buyer
                    .order(&order.id)
                    .await
                    .expect("an acknowledged order survives");
            }
            Ok(PlaceOrderAnswer::Accepted(placement)) => {
                acknowledged += 1;
                let done = super::super::placements::resolved(&buyer, placement).await;
                assert_eq!(
                    done.status,
                    flash_sale_client::PlacementStatusDto::Succeeded,
                    "{done:?}"
                );
            }
            Err(_) => {}
        }
    }
    assert!(acknowledged > 0);
    settled(&stores.admin(&node), p.id, Duration::from_secs(30)).await;
    stores.db.snapshot(p.id).await.assert_invariants(1);
    eprintln!(
        "{backend:?} {strategy:?}: SIGTERM under load, exited after {took:?}, {acknowledged} acknowledged, 0 lost"
    );
    node.terminate(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary and needs MariaDB and Redis; run scripts/test-all.sh"]
async fn mariadb_redis_sigterm_during_a_database_partition_exits_in_time() {
    terminated_during_partition(Backend::MariaDbRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary and needs PostgreSQL and Redis; run scripts/test-all.sh"]
async fn postgres_redis_sigterm_during_a_database_partition_exits_in_time() {
    terminated_during_partition(Backend::PostgresRedis).await;
}

async fn terminated_during_partition(backend: Backend) {
    let upstream = if backend.database() == Backend::MariaDb {
        target(&flash_sale_tests::mysql_admin_url())
    } else {
        target(&flash_sale_tests::postgres_admin_url())
    };
    let proxy = FaultProxy::start(&upstream).await;
    let mut stores = NodeStores::create(backend).await;
    stores.set("database.url", &through(&stores.db.url.clone(), &proxy));
    stores.set("server.shutdown_timeout", "5s");
    let node = stores.start().await;
    let (_, p) = sale(
        &stores.admin(&node),
        Some(StrategyDto::Sync),
        5_000,
        1,
        None,
    )
    .await;
    let buyers: Vec<_> = (0..16)
        .map(|w| {
            let client = stores.buyer(&node, &format!("p{w}"));
            tokio::spawn(async move {
                let cmd = OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                };
                for _ in 0..50 {
                    if let Err(ClientError::Transport(_)) = client.place_order(&cmd, None).await {
                        return;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.partition();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = node.terminate(SHUTDOWN + Duration::from_secs(3)).await;
    assert!(
        took.is_some_and(|t| t <= SHUTDOWN + Duration::from_secs(1)),
        "SIGTERM during a partition: exited after {took:?}"
    );
    proxy.restore();
    for buyer in buyers {
        buyer.await.expect("buyer");
    }
    eprintln!("{backend:?}: SIGTERM during a database partition, exited after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary and needs MariaDB and Redis; run scripts/test-all.sh"]
async fn mariadb_redis_sigterm_finishes_the_writes_whose_buyers_hung_up() {
    terminated_with_abandoned_writes(Backend::MariaDbRedis).await;
}

/// Buyers hang up while their orders are being written (the database answers slowly),
/// then SIGTERM arrives: no connection is open any more, but the writes are — the
/// process finishes them and settles their reservations before it exits, so right
/// after a restart nothing is in flight and every unit is accounted for.
async fn terminated_with_abandoned_writes(backend: Backend) {
    const BUYERS: usize = 6;
    let proxy = FaultProxy::start(&target(&flash_sale_tests::mysql_admin_url())).await;
    let mut stores = NodeStores::create(backend).await;
    stores.set("database.url", &through(&stores.db.url.clone(), &proxy));
    stores.set("server.shutdown_timeout", "20s");
    let node = stores.start().await;
    let (_, p) = sale(&stores.admin(&node), Some(StrategyDto::Sync), 100, 1, None).await;

    proxy.delay(Duration::from_millis(40));
    let hung_up: Vec<_> = (0..BUYERS)
        .map(|i| {
            let buyer = stores.buyer(&node, &format!("gone{i}"));
            tokio::spawn(async move {
                let cmd = OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                };
                // The buyer gives up long before the write can be done.
                tokio::time::timeout(Duration::from_millis(250), buyer.place_order(&cmd, None))
                    .await
                    .is_err()
            })
        })
        .collect();
    for buyer in hung_up {
        assert!(
            buyer.await.expect("buyer"),
            "the buyer was answered before hanging up"
        );
    }
    let log = node.log.clone();
    let took = node
        .terminate(Duration::from_secs(30))
        .await
        .expect("the process exits");
    proxy.restore();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !log.contains("writes did not finish in time"),
        "the writes are too slow for this test's shutdown budget: {log}"
    );

    let node = stores.start().await;
    let admin = stores.admin(&node);
    let inventory = admin.inventory(p.id).await.expect("inventory");
    assert_eq!(
        (inventory.in_flight, inventory.consistent),
        (0, true),
        "reservations left behind by writes cut off at exit: {inventory:?}"
    );
    let orders = admin
        .admin_orders(&AdminOrderListQry {
            product_id: Some(p.id),
            ..AdminOrderListQry::default()
        })
        .await
        .expect("orders");
    assert_eq!(
        (orders.total, inventory.db_available + inventory.held),
        (BUYERS as u64, 100),
        "every abandoned write finished: {inventory:?}"
    );
    eprintln!(
        "{backend:?}: SIGTERM with {BUYERS} abandoned writes in progress, exited after {took:?}, all {BUYERS} written and settled"
    );
    node.terminate(Duration::from_secs(15)).await;
}
