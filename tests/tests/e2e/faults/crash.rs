//! `kill -9` of the real binary mid-sale, for each strategy: every acknowledged order
//! survives, every 202 resolves, the reservations the dead process left in the stock
//! ledger are ended by the recovery job, and then every unit the database calls
//! available — and every buyer's quota — sells again. And two instances, one killed:
//! the other carries on, its leader jobs included.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flash_sale_client::{
    ClientError, ErrorCode, OrderPayCmd, OrderPlaceCmd, PlaceOrderAnswer, StrategyDto,
};
use flash_sale_tests::node::{Node, NodeStores};
use flash_sale_tests::{Backend, sale};

use super::{sell, settled};

macro_rules! crash_tests {
    ($($name:ident: $backend:ident, $strategy:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "spawns the flash-sale binary and needs the stack's servers; run scripts/test-all.sh"]
            async fn $name() {
                killed_mid_sale(Backend::$backend, StrategyDto::$strategy).await;
            }
        )*
    };
}

crash_tests! {
    sync_on_sqlite_survives_kill_9: Sqlite, Sync;
    buckets_on_sqlite_survives_kill_9: Sqlite, Buckets;
    async_on_sqlite_survives_kill_9: Sqlite, Async;
    sync_on_mariadb_redis_survives_kill_9: MariaDbRedis, Sync;
    buckets_on_mariadb_redis_survives_kill_9: MariaDbRedis, Buckets;
    async_on_mariadb_redis_survives_kill_9: MariaDbRedis, Async;
    sync_on_postgres_redis_survives_kill_9: PostgresRedis, Sync;
    buckets_on_postgres_redis_survives_kill_9: PostgresRedis, Buckets;
    async_on_postgres_redis_survives_kill_9: PostgresRedis, Async;
    async_on_mariadb_redis_rocketmq_survives_kill_9: MariaDbRedisRocketmq, Async;
    async_on_postgres_redis_rocketmq_survives_kill_9: PostgresRedisRocketmq, Async;
}

/// How many buyers order at once.
const BUYERS: usize = 64;
/// Units on sale (more than sell before the kill).
const STOCK: i64 = 1_500;
/// The kill comes once this many orders were acknowledged.
const KILL_AFTER: usize = 150;

type Answers = Arc<Mutex<Vec<(String, Result<PlaceOrderAnswer, ClientError>)>>>;

/// Buyers order (one unit each, with a key) until their node dies; every answer is
/// kept by buyer.
fn buy_until_dead(
    stores: &NodeStores,
    node: &Node,
    product_id: i64,
    answers: &Answers,
) -> Vec<tokio::task::JoinHandle<()>> {
    // Every client is made before the first order, so the kill comes mid-sale
    // however long making them takes.
    let buyers: Vec<Vec<_>> = (0..BUYERS)
        .map(|w| {
            (0..200)
                .map(|i| {
                    let name = format!("k{w}-{i}");
                    (name.clone(), stores.buyer(node, &name))
                })
                .collect()
        })
        .collect();
    buyers
        .into_iter()
        .map(|clients| {
            let answers = answers.clone();
            tokio::spawn(async move {
                let cmd = OrderPlaceCmd {
                    product_id,
                    quantity: 1,
                };
                for (name, client) in clients {
                    let answer = client.place_order(&cmd, Some("once")).await;
                    let dead = matches!(answer, Err(ClientError::Transport(_)));
                    answers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((name, answer));
                    if dead {
                        return;
                    }
                }
            })
        })
        .collect()
}

/// Waits until `count` answers are orders (at most 10 s).
async fn wait_for_acknowledged(answers: &Answers, count: usize) {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let acknowledged = answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, a)| a.is_ok())
            .count();
        if acknowledged >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn killed_mid_sale(backend: Backend, strategy: StrategyDto) {
    let mut stores = NodeStores::create(backend).await;
    stores.set("stock.recovery_after", "3s");
    let node = stores.start().await;
    let buckets = (strategy == StrategyDto::Buckets).then_some(16);
    let (_, p) = sale(&stores.admin(&node), Some(strategy), STOCK, 1, buckets).await;

    let answers: Answers = Arc::default();
    let buying = buy_until_dead(&stores, &node, p.id, &answers);
    wait_for_acknowledged(&answers, KILL_AFTER).await;
    node.kill().await;
    for buyer in buying {
        buyer.await.expect("buyer");
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(PoisonError::into_inner));
    let acknowledged = answers.iter().filter(|(_, a)| a.is_ok()).count();
    assert!(acknowledged > 0, "orders were taken before the kill");
    for (_, answer) in &answers {
        assert!(
            matches!(answer, Ok(_) | Err(ClientError::Transport(_))),
            "before the kill every answer is an order: {answer:?}"
        );
    }

    // A new process on the same stores.
    let restarted = std::time::Instant::now();
    let node = stores.start().await;
    let admin = stores.admin(&node);
    for (name, answer) in &answers {
        let buyer = stores.buyer(&node, name);
        match answer {
            Ok(PlaceOrderAnswer::Created(order)) => {
                buyer.order(&order.id).await.expect("every 201 survives");
            }
            Ok(PlaceOrderAnswer::Accepted(placement)) => {
                let done = super::super::placements::resolved(&buyer, placement).await;
                assert_eq!(
                    done.status,
                    flash_sale_client::PlacementStatusDto::Succeeded,
                    "every 202 becomes its order: {done:?}"
                );
            }
            Err(_) => {}
        }
    }
    // Within one recovery period, nothing is left in flight.
    settled(&admin, p.id, Duration::from_secs(30)).await;
    let recovered = restarted.elapsed();

    // A buyer whose answer was lost asks again with the same key: their order, or a
    // new one — their quota came back if nothing was written — never LIMIT_EXCEEDED.
    let lost: Vec<&String> = answers
        .iter()
        .filter(|(_, a)| a.is_err())
        .map(|(name, _)| name)
        .collect();
    for name in &lost {
        let buyer = stores.buyer(&node, name);
        let again = flash_sale_tests::place_until_answered(&buyer, p.id, 1, Some("once")).await;
        match again {
            Ok(PlaceOrderAnswer::Created(_)) => {}
            Ok(PlaceOrderAnswer::Accepted(placement)) => {
                let done = super::super::placements::resolved(&buyer, &placement).await;
                assert_eq!(
                    done.status,
                    flash_sale_client::PlacementStatusDto::Succeeded
                );
            }
            Err(code) => panic!("{name} asked again and got {code:?}"),
        }
    }
    settled(&admin, p.id, Duration::from_secs(30)).await;
    let snapshot = stores.db.snapshot(p.id).await;
    snapshot.assert_invariants(1);

    // Every unit the database calls available sells again: exactly that many.
    let left = snapshot.db_available();
    let sold = sell(
        |i| stores.buyer(&node, &format!("after-{i}")),
        p.id,
        usize::try_from(left).expect("small") + 10,
    )
    .await;
    assert_eq!(
        i64::try_from(sold).expect("small"),
        left,
        "every unit sells again"
    );
    let snapshot = stores.db.snapshot(p.id).await;
    assert_eq!(snapshot.db_available(), 0);
    snapshot.assert_invariants(1);
    eprintln!(
        "{backend:?} {strategy:?}: {acknowledged} acknowledged before kill -9, {} answers lost, \
         {} units lost, recovered {recovered:?} after the restart began, {left} sold again",
        lost.len(),
        left - i64::try_from(sold).expect("small")
    );
    node.terminate(Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary and needs MariaDB and Redis; run scripts/test-all.sh"]
async fn mariadb_redis_one_of_two_instances_killed_the_other_carries_on() {
    two_instances_one_killed(Backend::MariaDbRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary and needs PostgreSQL and Redis; run scripts/test-all.sh"]
async fn postgres_redis_one_of_two_instances_killed_the_other_carries_on() {
    two_instances_one_killed(Backend::PostgresRedis).await;
}

/// Two instances sell; one is killed mid-sale. The other keeps selling, and the
/// leader jobs (expiry among them) run there within their lease.
async fn two_instances_one_killed(backend: Backend) {
    let mut stores = NodeStores::create(backend).await;
    stores.set("stock.recovery_after", "3s");
    stores.set("orders.payment_timeout", "4s");
    let first = stores.start().await;
    let second = stores.start().await;
    let (_, p) = sale(&stores.admin(&first), Some(StrategyDto::Sync), 200, 1, None).await;

    let answers: Answers = Arc::default();
    let buying = buy_until_dead(&stores, &first, p.id, &answers);
    wait_for_acknowledged(&answers, 30).await;
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    // The survivor sells too, and one of its orders is paid.
    let mut survivors = Vec::new();
    for i in 0..20 {
        let buyer = stores.buyer(&second, &format!("s-{i}"));
        if let Ok(PlaceOrderAnswer::Created(order)) = buyer.place_order(&cmd, None).await {
            survivors.push(order);
        }
    }
    assert!(!survivors.is_empty());
    let paid = &survivors[0];
    stores
        .buyer(&second, &paid.user_id)
        .pay(
            &paid.id,
            &OrderPayCmd {
                transaction_id: "tx-survivor".into(),
                amount: paid.total_price,
            },
        )
        .await
        .expect("paid");
    first.kill().await;
    for buyer in buying {
        buyer.await.expect("buyer");
    }

    // The survivor answers at once, and the unpaid orders of both instances expire
    // there (the expiry job moved over within its lease).
    for i in 20..30 {
        let buyer = stores.buyer(&second, &format!("s-{i}"));
        let answer = buyer.place_order(&cmd, None).await;
        assert!(
            answer.is_ok()
                || answer.as_ref().err().and_then(ClientError::code) == Some(ErrorCode::SoldOut),
            "the survivor sells on: {answer:?}"
        );
    }
    let admin = stores.admin(&second);
    let started = std::time::Instant::now();
    loop {
        let snapshot = stores.db.snapshot(p.id).await;
        let pending = snapshot
            .orders
            .iter()
            .filter(|o| o.status == "pending_payment")
            .count();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{pending} unpaid orders did not expire on the survivor"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    settled(&admin, p.id, Duration::from_secs(30)).await;
    let snapshot = stores.db.snapshot(p.id).await;
    snapshot.assert_invariants(1);
    assert_eq!(snapshot.held(), 1, "only the paid order holds units");
    assert_eq!(snapshot.db_available(), 199);
    second.terminate(Duration::from_secs(15)).await;
}
