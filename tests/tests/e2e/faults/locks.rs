//! A database that answers but is locked — another session holds the stock rows, the
//! table, or (SQLite) the write lock: a buyer is answered within the lock timeout plus
//! the request's budget, with 503 and nothing consumed, however long the lock stays.

use std::time::{Duration, Instant};

use flash_sale::config::HumanDuration;
use flash_sale_client::{ErrorCode, OrderPlaceCmd, PageQry, PlaceOrderAnswer, StrategyDto};
use flash_sale_tests::{Backend, TestApp, sale};
use sea_orm::{ConnectionTrait, TransactionTrait};

crate::on_every_stack!(a_locked_database_answers_within_the_lock_timeout_and_consumes_nothing);

const BUDGET: Duration = Duration::from_secs(2);
const LOCK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the other session keeps its lock: longer than any answer may take.
const HELD: Duration = Duration::from_secs(9);

async fn a_locked_database_answers_within_the_lock_timeout_and_consumes_nothing(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.server.request_timeout = HumanDuration(BUDGET);
        s.database.lock_timeout = HumanDuration(LOCK_TIMEOUT);
    })
    .await;
    let (_, p) = sale(&t.admin, Some(StrategyDto::Sync), 100, 1, None).await;
    // Warm the stock into the ledger first, so the orders below reach the database.
    let before = t.admin.inventory(p.id).await.expect("inventory");

    let db = t.db.connect().await.expect("database");
    let lock = db.begin().await.expect("begin");
    let statement = match backend.database() {
        // A table lock: a metadata lock, which innodb_lock_wait_timeout does not bound.
        Backend::MariaDb => "LOCK TABLES stock_buckets WRITE".to_owned(),
        Backend::Postgres => "LOCK TABLE stock_buckets IN ACCESS EXCLUSIVE MODE".to_owned(),
        // SQLite locks the whole database for the first writer.
        _ => format!(
            "UPDATE stock_buckets SET available = available WHERE product_id = {}",
            p.id
        ),
    };
    lock.execute_unprepared(&statement).await.expect("lock");
    let locked = Instant::now();

    let orders: Vec<_> = (0..8)
        .map(|i| {
            let buyer = t.buyer(&format!("locked-{i}"));
            tokio::spawn(async move {
                let started = Instant::now();
                let cmd = OrderPlaceCmd {
                    product_id: p.id,
                    quantity: 1,
                };
                let answer = buyer.place_order(&cmd, None).await;
                (started.elapsed(), answer)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for order in orders {
        answers.push(order.await.expect("buyer"));
    }
    assert!(
        locked.elapsed() < HELD,
        "every buyer was answered while the lock was still held: {:?}",
        answers
            .iter()
            .map(|(took, answer)| (
                took,
                answer
                    .as_ref()
                    .map(|_| ())
                    .map_err(flash_sale_client::ClientError::code)
            ))
            .collect::<Vec<_>>()
    );
    // Its own wait for the lock, perhaps after the batch ahead of it waited too (one
    // wait each: a lock that timed out is not waited for again), and slack.
    let bound = LOCK_TIMEOUT * 2 + Duration::from_millis(1500);
    for (took, answer) in &answers {
        assert!(*took < bound, "answered after {took:?}: {answer:?}");
        match answer {
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::Unavailable), "{e:?}"),
            Ok(PlaceOrderAnswer::Created(order)) => {
                panic!("an order was made while the stock was locked: {order:?}")
            }
            Ok(other) => panic!("unexpected answer {other:?}"),
        }
    }
    tokio::time::sleep(HELD.saturating_sub(locked.elapsed())).await;
    if backend.database() == Backend::MariaDb {
        lock.execute_unprepared("UNLOCK TABLES")
            .await
            .expect("unlock");
    }
    lock.rollback().await.expect("release");

    // Nothing was consumed: every unit is still there, and no buyer holds an order.
    super::settled(&t.admin, p.id, Duration::from_secs(30)).await;
    let after = t.admin.inventory(p.id).await.expect("inventory");
    assert_eq!(after.db_available, before.db_available, "{after:?}");
    assert_eq!(after.cache_available, before.cache_available, "{after:?}");
    for i in 0..8 {
        let orders = t
            .buyer(&format!("locked-{i}"))
            .orders(&PageQry::default())
            .await
            .expect("orders");
        assert_eq!(orders.total, 0, "buyer {i} was told 503 but holds an order");
    }
    // And the sale goes on.
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let answer = t.buyer("after").place_order(&cmd, None).await;
    assert!(
        matches!(answer, Ok(PlaceOrderAnswer::Created(_))),
        "{answer:?}"
    );
    t.stop().await;
}
