//! Group commit (DESIGN §4): orders that wait at the same moment are written in one
//! transaction; a guard that refuses one of them refuses that one alone, and under
//! load one commit carries many orders.

use flash_sale_client::{OrderPlaceCmd, StrategyDto};
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{GatewayError, OrderGateway};
use flash_sale_domain::order::{NewOrder, Order, OrderError, OrderId, OrderRequest};
use flash_sale_domain::product::{PerUserLimit, ProductId};
use flash_sale_domain::{DomainError, Strategy};
use flash_sale_infrastructure::db::{Database, PoolSettings, SeaOrmOrderGateway};
use flash_sale_tests::node::{Node, NodeStores};
use flash_sale_tests::{Backend, TestApp, sale};

crate::on_every_backend!(
    orders_written_together_are_refused_alone,
    orders_of_many_buckets_written_together_empty_each_bucket_exactly,
);

fn order(event_id: i64, product_id: i64, user: &str) -> Order {
    order_from(event_id, product_id, user, 0)
}

fn order_from(event_id: i64, product_id: i64, user: &str, bucket: u32) -> Order {
    let now = chrono::Utc::now();
    Order::place(NewOrder {
        id: OrderId::generate(),
        user_id: UserId::parse(user).expect("user id"),
        event_id: EventId(event_id),
        request: OrderRequest {
            product_id: ProductId(product_id),
            quantity: 1,
        },
        allocation: Allocation::single(bucket, 1),
        unit_price: 100,
        strategy: Strategy::Sync,
        idempotency_key: None,
        placement_id: None,
        now,
        payment_timeout: chrono::Duration::minutes(15),
    })
    .expect("an order")
}

/// 32 orders for 30 units, all at once, straight to the order gateway: 31 buyers want
/// one unit each and one of them a second (over their limit of 1). Whatever batches
/// they share, exactly 30 are written, the two refused are refused for their own
/// reason, and the rows agree.
async fn orders_written_together_are_refused_alone(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (event, p) = sale(&t.admin, Some(StrategyDto::Sync), 30, 1, None).await;
    let db = Database::connect(&t.db.url, &PoolSettings::default())
        .await
        .expect("database");
    let orders = SeaOrmOrderGateway::new(db);
    let limit = PerUserLimit::new(1).expect("limit");
    let mut wanted: Vec<Order> = (0..31)
        .map(|i| order(event.id, p.id, &format!("gc-{i}")))
        .collect();
    wanted.push(order(event.id, p.id, "gc-0"));

    let answers = futures::future::join_all(wanted.iter().map(|o| orders.place(o, limit))).await;
    let placed = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(placed, 30, "every unit sells, none twice: {answers:?}");
    for answer in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(
            matches!(
                answer,
                GatewayError::Rejected(DomainError::Order(
                    OrderError::SoldOut | OrderError::LimitExceeded { .. }
                ))
            ),
            "a refusal names its own reason: {answer:?}"
        );
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.orders.len(), 30);
    assert_eq!(snapshot.db_available(), 0);
    let ids: std::collections::HashSet<&str> =
        snapshot.orders.iter().map(|o| o.id.as_str()).collect();
    for (order, answer) in wanted.iter().zip(&answers) {
        assert_eq!(
            ids.contains(order.id.as_str()),
            answer.is_ok(),
            "an order is stored exactly when it was acknowledged"
        );
    }
    snapshot.assert_invariants(1);
    t.stop().await;
}

/// 40 orders at once for 32 units in 4 buckets of 8, ten orders per bucket: one
/// statement decrements every bucket a batch touches, and the two orders too many for
/// each bucket are refused alone — every bucket ends empty, none below zero.
async fn orders_of_many_buckets_written_together_empty_each_bucket_exactly(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (event, p) = sale(&t.admin, Some(StrategyDto::Buckets), 32, 1, Some(4)).await;
    let db = Database::connect(&t.db.url, &PoolSettings::default())
        .await
        .expect("database");
    let orders = SeaOrmOrderGateway::new(db);
    let limit = PerUserLimit::new(1).expect("limit");
    let wanted: Vec<Order> = (0..40u32)
        .map(|i| order_from(event.id, p.id, &format!("gb-{i}"), i % 4))
        .collect();

    let answers = futures::future::join_all(wanted.iter().map(|o| orders.place(o, limit))).await;
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        32,
        "{answers:?}"
    );
    for answer in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(
            matches!(
                answer,
                GatewayError::Rejected(DomainError::Order(OrderError::SoldOut))
            ),
            "{answer:?}"
        );
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.buckets.len(), 4);
    for (bucket, _, available) in &snapshot.buckets {
        assert_eq!(*available, 0, "bucket {bucket} sold exactly its units");
        assert_eq!(
            snapshot
                .orders
                .iter()
                .map(|o| o.units_in(*bucket))
                .sum::<i64>(),
            8
        );
    }
    snapshot.assert_invariants(1);
    t.stop().await;
}

/// The value of the Prometheus series `name` (its first line), if exported.
fn series(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

/// A node that took 400 orders at once, still running.
struct Loaded {
    stores: NodeStores,
    _node: Node,
    product: i64,
    /// Writes of the batcher named in the call that went out.
    items: f64,
    /// The batches that carried them.
    batches: f64,
}

/// 400 buyers of a new `strategy` sale order at once from the real binary on
/// `backend`, and every answer is a success; how the `writes` batcher carried them
/// (`flash_sale_group_commit_size{writes}`).
async fn four_hundred_at_once(backend: Backend, strategy: StrategyDto, writes: &str) -> Loaded {
    let stores = NodeStores::create(backend).await;
    let node = stores.start().await;
    let admin = stores.admin(&node);
    let (_, p) = sale(&admin, Some(strategy), 1_000, 1, None).await;
    let cmd = OrderPlaceCmd {
        product_id: p.id,
        quantity: 1,
    };
    let buyers: Vec<_> = (0..400)
        .map(|i| stores.buyer(&node, &format!("load-{i}")))
        .collect();
    let answers = futures::future::join_all(buyers.iter().map(|b| b.place_order(&cmd, None))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    let metrics = admin.metrics().await.expect("metrics");
    let items = series(
        &metrics,
        &format!("flash_sale_group_commit_size_sum{{writes=\"{writes}\"}}"),
    )
    .expect("the batch size is exported");
    let batches = series(
        &metrics,
        &format!("flash_sale_group_commit_size_count{{writes=\"{writes}\"}}"),
    )
    .expect("the number of batches is exported");
    Loaded {
        stores,
        _node: node,
        product: p.id,
        items,
        batches,
    }
}

/// 400 buyers order at once from the real binary: every order is committed, in far
/// fewer commits than orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns the flash-sale binary; run scripts/test-all.sh"]
async fn under_load_one_commit_carries_many_orders() {
    let Loaded {
        stores,
        _node,
        product,
        items: orders,
        batches: commits,
    } = four_hundred_at_once(Backend::Sqlite, StrategyDto::Sync, "orders").await;
    eprintln!("{orders} orders in {commits} commits");
    assert!(
        (orders - 400.0).abs() < f64::EPSILON,
        "{orders} orders written"
    );
    assert!(commits < 200.0, "{commits} commits for 400 orders");
    let snapshot = stores.db.snapshot(product).await;
    assert_eq!(snapshot.orders.len(), 400);
    snapshot.assert_invariants(1);
}

/// 400 buyers of an async sale on RocketMQ at once: every placement is accepted after
/// the broker acknowledged it, in far fewer broker messages than placements, and every
/// one becomes its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB, Redis and RocketMQ (scripts/rocketmq.sh start); run scripts/test-all.sh"]
async fn under_load_one_broker_message_carries_many_placements() {
    let Loaded {
        stores,
        _node,
        product,
        items: tasks,
        batches: messages,
    } = four_hundred_at_once(
        Backend::MariaDbRedisRocketmq,
        StrategyDto::Async,
        "placement_tasks",
    )
    .await;
    eprintln!("{tasks} placements in {messages} messages");
    assert!(
        (tasks - 400.0).abs() < f64::EPSILON,
        "{tasks} placements sent"
    );
    assert!(messages < 200.0, "{messages} messages for 400 placements");
    let started = std::time::Instant::now();
    let snapshot = loop {
        let snapshot = stores.db.snapshot(product).await;
        if snapshot.orders.len() == 400 {
            break snapshot;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_mins(1),
            "{} of 400 placements became orders within 60 s",
            snapshot.orders.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    snapshot.assert_invariants(1);
}

/// Group commits of every size from 1 to 120 on one MariaDB connection: each size is a
/// statement shape of its own (four of them per batch), and the connection keeps them
/// all prepared. When sqlx's cache of 100 churned, every eviction sent
/// `COM_STMT_CLOSE` right before the next statement, which Nagle's algorithm then
/// held until the server's delayed ACK — about 40 ms, several times per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB and Redis; run scripts/test-all.sh"]
async fn group_commits_of_every_size_never_evict_a_prepared_statement() {
    let t = TestApp::spawn(Backend::MariaDbRedis).await;
    let (event, p) = sale(&t.admin, Some(StrategyDto::Sync), 10_000, 1, None).await;
    let db = one_connection(&t.db.url).await;
    let before = session_count(&db, "Com_stmt_close").await;
    let orders = SeaOrmOrderGateway::new(db.clone());
    let limit = PerUserLimit::new(1).expect("limit");
    let mut placed = 0;
    for size in 1..=120 {
        let batch: Vec<Order> = (0..size)
            .map(|i| order(event.id, p.id, &format!("shape-{size}-{i}")))
            .collect();
        let answers = futures::future::join_all(batch.iter().map(|o| orders.place(o, limit))).await;
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        placed += size;
    }
    assert_eq!(
        session_count(&db, "Com_stmt_close").await,
        before,
        "no prepared statement was evicted (and closed) over {placed} orders"
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(snapshot.orders.len(), placed);
    snapshot.assert_invariants(1);
    t.stop().await;
}

/// Write transactions run at READ COMMITTED because every connection was told so when
/// it opened: an order sends no `SET TRANSACTION` of its own, which cost each write
/// transaction a round trip before its `BEGIN`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs MariaDB and Redis; run scripts/test-all.sh"]
async fn write_transactions_run_at_read_committed_without_a_statement_each() {
    let t = TestApp::spawn(Backend::MariaDbRedis).await;
    let (event, p) = sale(&t.admin, Some(StrategyDto::Sync), 100, 1, None).await;
    let db = one_connection(&t.db.url).await;
    assert_eq!(
        isolation_in_a_write(&db, "SELECT @@tx_isolation").await,
        "READ-COMMITTED"
    );
    let sets = || session_count(&db, "Com_set_option");
    let before = sets().await;
    let orders = SeaOrmOrderGateway::new(db.clone());
    let limit = PerUserLimit::new(1).expect("limit");
    for i in 0..10 {
        orders
            .place(&order(event.id, p.id, &format!("rc-{i}")), limit)
            .await
            .expect("placed");
    }
    assert_eq!(sets().await, before, "10 orders sent no SET statement");
    t.snapshot(p.id).await.assert_invariants(1);
    t.stop().await;
}

/// The same on PostgreSQL: READ COMMITTED whatever the server's default, from the
/// connection's start-up parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis; run scripts/test-all.sh"]
async fn postgres_write_transactions_run_at_read_committed() {
    let t = TestApp::spawn(Backend::PostgresRedis).await;
    let db = one_connection(&t.db.url).await;
    assert_eq!(
        isolation_in_a_write(&db, "SHOW transaction_isolation").await,
        "read committed"
    );
    t.stop().await;
}

async fn one_connection(url: &str) -> Database {
    let pool = PoolSettings {
        max_connections: 1,
        ..PoolSettings::default()
    };
    Database::connect(url, &pool).await.expect("database")
}

/// What `query` (one text column) answers inside a write transaction.
async fn isolation_in_a_write(db: &Database, query: &str) -> String {
    use sea_orm::{ConnectionTrait, Statement};
    let tx = db.begin_write().await.expect("a write transaction");
    let row = tx
        .query_one_raw(Statement::from_string(db.backend(), query))
        .await
        .expect("isolation")
        .expect("a row");
    let level = row.try_get_by_index::<String>(0).expect("a level");
    tx.rollback().await.expect("rollback");
    level
}

/// A MariaDB session status counter.
async fn session_count(db: &Database, name: &str) -> u64 {
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .connection()
        .query_one_raw(Statement::from_string(
            db.backend(),
            format!("SHOW SESSION STATUS LIKE '{name}'"),
        ))
        .await
        .expect("session status")
        .expect("a row");
    row.try_get_by_index::<String>(1)
        .expect("a count")
        .parse()
        .expect("a number")
}
