//! The network between the service and its database or Redis fails mid-sale, through
//! a TCP proxy in front of the shared server: cut for 2 s, split for 3 s (the
//! database keeps the orphaned sessions and their locks), or 500 ms slower. Every
//! answer is the truth — an order, or a refusal, or 503 with nothing consumed (no
//! buyer told 503 holds an order) — and after the network heals the sale resumes
//! within a bounded time and completes with every invariant.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flash_sale::config::SecretUrl;
use flash_sale_client::{
    ClientError, ErrorCode, FlashSaleClient, OrderPlaceCmd, PlaceOrderAnswer, StrategyDto,
};
use flash_sale_tests::proxy::{FaultProxy, target, through};
use flash_sale_tests::{Backend, TestApp, sale};

use super::{sell, settled};

mod database {
    use super::*;

    crate::on_every_stack!(
        a_database_cut_for_two_seconds_costs_no_unit_and_no_false_503,
        a_database_partition_heals_within_a_bounded_time,
        a_slow_database_answers_503_fast_and_leaks_no_connection,
    );

    async fn a_database_cut_for_two_seconds_costs_no_unit_and_no_false_503(backend: Backend) {
        if backend == Backend::Sqlite {
            return; // a file, no network
        }
        Box::pin(storm(backend, Dependency::Database, Fault::Cut)).await;
    }

    async fn a_database_partition_heals_within_a_bounded_time(backend: Backend) {
        if backend == Backend::Sqlite {
            return;
        }
        Box::pin(storm(backend, Dependency::Database, Fault::Partition)).await;
    }

    async fn a_slow_database_answers_503_fast_and_leaks_no_connection(backend: Backend) {
        if backend == Backend::Sqlite {
            return;
        }
        Box::pin(storm(backend, Dependency::Database, Fault::Slow)).await;
    }
}

mod redis {
    use super::*;

    crate::on_redis_stacks!(
        a_redis_cut_for_two_seconds_costs_no_unit_and_no_false_503,
        a_slow_redis_answers_503_fast_and_leaks_no_connection,
        redis_restarted_empty_mid_sale_is_rebuilt_from_the_database,
    );

    async fn redis_restarted_empty_mid_sale_is_rebuilt_from_the_database(backend: Backend) {
        Box::pin(storm(backend, Dependency::Redis, Fault::RestartEmpty)).await;
    }

    async fn a_redis_cut_for_two_seconds_costs_no_unit_and_no_false_503(backend: Backend) {
        Box::pin(storm(backend, Dependency::Redis, Fault::Cut)).await;
    }

    async fn a_slow_redis_answers_503_fast_and_leaks_no_connection(backend: Backend) {
        Box::pin(storm(backend, Dependency::Redis, Fault::Slow)).await;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dependency {
    Database,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every connection reset, new ones refused, for 2 s.
    Cut,
    /// The service's side of every connection dropped, the server's kept, for 3 s.
    Partition,
    /// 500 ms on every chunk, for 3 s.
    Slow,
    /// Down for 1 s and back with none of its data (a restart without persistence).
    RestartEmpty,
}

/// The time budget of a request in these tests.
const BUDGET: Duration = Duration::from_secs(2);
/// How long the database keeps a silent session here.
const SESSION: Duration = Duration::from_secs(5);

type Answers = Arc<Mutex<Vec<(String, Duration, Result<PlaceOrderAnswer, ClientError>)>>>;

async fn storm(backend: Backend, dependency: Dependency, fault: Fault) {
    let upstream = match dependency {
        Dependency::Database if backend.database() == Backend::MariaDb => {
            target(&flash_sale_tests::mysql_admin_url())
        }
        Dependency::Database => target(&flash_sale_tests::postgres_admin_url()),
        Dependency::Redis => target(&flash_sale_tests::redis_url()),
    };
    let proxy = Arc::new(FaultProxy::start(&upstream).await);
    let via = proxy.clone();
    let t = TestApp::spawn_with(backend, move |s| {
        match dependency {
            Dependency::Database => {
                s.database.url = SecretUrl::new(through(s.database.url.expose(), &via));
            }
            Dependency::Redis => {
                s.redis.url = SecretUrl::new(through(s.redis.url.expose(), &via));
            }
        }
        s.server.request_timeout = flash_sale::config::HumanDuration(BUDGET);
        s.database.lock_timeout = flash_sale::config::HumanDuration(Duration::from_secs(2));
        s.database.statement_timeout = flash_sale::config::HumanDuration(Duration::from_secs(4));
        s.database.session_timeout = flash_sale::config::HumanDuration(SESSION);
        s.stock.recovery_after = flash_sale::config::HumanDuration(Duration::from_secs(4));
    })
    .await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Sync), 2_000, 1, None).await;

    let answers: Answers = Arc::default();
    let storm_ends = Instant::now() + Duration::from_secs(7);
    let workers: Vec<_> = (0..24)
        .map(|w| {
            let answers = answers.clone();
            let clients: Vec<(String, FlashSaleClient)> = (0..400)
                .map(|i| {
                    let name = format!("n{w}-{i}");
                    (name.clone(), t.buyer(&name))
                })
                .collect();
            tokio::spawn(async move {
                let cmd = OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                };
                for (name, client) in clients {
                    if Instant::now() >= storm_ends {
                        return;
                    }
                    let started = Instant::now();
                    let answer = client.place_order(&cmd, None).await;
                    answers
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((name, started.elapsed(), answer));
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let (length, apply): (Duration, Box<dyn Fn()>) = match fault {
        Fault::Cut => (Duration::from_secs(2), Box::new(|| proxy.cut())),
        Fault::Partition => (Duration::from_secs(3), Box::new(|| proxy.partition())),
        Fault::Slow => (
            Duration::from_secs(3),
            Box::new(|| proxy.delay(Duration::from_millis(500))),
        ),
        Fault::RestartEmpty => (Duration::from_secs(1), Box::new(|| proxy.cut())),
    };
    apply();
    tokio::time::sleep(length).await;
    if fault == Fault::RestartEmpty {
        let redis = t.redis.as_ref().expect("a Redis stack").connect().await;
        redis.delete_prefix().await.expect("wiped");
    }
    proxy.restore();
    let healed = Instant::now();

    // After the network heals, a new buyer gets an order within a bounded time.
    let first_order = loop {
        let answer = t
            .buyer(&format!("probe-{}", healed.elapsed().as_millis()))
            .place_order(
                &OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                },
                None,
            )
            .await;
        if matches!(answer, Ok(PlaceOrderAnswer::Created(_))) {
            break healed.elapsed();
        }
        assert!(
            healed.elapsed() < SESSION * 3,
            "no order {:?} after the network healed: {answer:?}",
            healed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for worker in workers {
        worker.await.expect("worker");
    }
    settled(&t.admin, p.id, Duration::from_secs(40)).await;

    let answers = std::mem::take(&mut *answers.lock().unwrap_or_else(PoisonError::into_inner));
    let snapshot = t.snapshot(p.id).await;
    snapshot.assert_invariants(1);
    let held = snapshot.held_by_user();
    let (mut created, mut unavailable, mut slowest) = (0, 0, Duration::ZERO);
    for (name, took, answer) in &answers {
        slowest = slowest.max(*took);
        match answer {
            Ok(PlaceOrderAnswer::Created(order)) => {
                created += 1;
                assert!(
                    snapshot
                        .orders
                        .iter()
                        .any(|o| o.id == order.id && o.is_live()),
                    "an acknowledged order is in the database"
                );
            }
            Err(e) if e.code() == Some(ErrorCode::Unavailable) => {
                unavailable += 1;
                assert_eq!(
                    held.get(name).copied().unwrap_or(0),
                    0,
                    "{name} was told 503 (nothing consumed) but holds an order"
                );
            }
            // The storm may sell the product out.
            Err(e) if e.code() == Some(ErrorCode::SoldOut) => {}
            other => panic!("{name}: {other:?}"),
        }
    }
    if fault == Fault::Slow {
        // Nobody waits long: past the budget a request answers 503 before it reserves
        // anything; one that reserved finishes its commit (a few slow round trips).
        assert!(
            slowest < BUDGET + Duration::from_secs(8),
            "a request waited {slowest:?}"
        );
    }
    // Nothing leaks: no write task is left, and the pool's connections through the
    // proxy stay within its size.
    assert_eq!(
        t.app.as_ref().expect("running").writes_in_progress(),
        0,
        "write tasks left behind"
    );
    assert!(
        proxy.open_connections() <= 8 + 2,
        "{} connections through the proxy",
        proxy.open_connections()
    );

    let left = snapshot.db_available();
    let sold = sell(
        |i| t.buyer(&format!("rest-{i}")),
        p.id,
        usize::try_from(left).expect("small") + 10,
    )
    .await;
    assert_eq!(
        i64::try_from(sold).expect("small"),
        left,
        "every unit sells again"
    );
    t.snapshot(p.id).await.assert_invariants(1);
    eprintln!(
        "{backend:?} {dependency:?} {fault:?}: {} answers, {created} orders, {unavailable} × 503 \
         (none holds an order), {} units lost, an order {first_order:?} after the heal, slowest \
         answer {slowest:?}",
        answers.len(),
        left - i64::try_from(sold).expect("small")
    );
    t.stop().await;
}
