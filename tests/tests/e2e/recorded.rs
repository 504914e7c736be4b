//! With Redis, an async placement is recorded by the reservation script beside its hold
//! (one round trip): accepting one writes no database row; its row is written once,
//! already resolved, with its order.

use flash_sale_client::{OrderPlaceCmd, PlaceOrderAnswer, PlacementDto, PlacementStatusDto};
use flash_sale_tests::{Backend, TestApp};
use sea_orm::{ConnectionTrait, Statement};

use super::placements::{async_product, resolved};

crate::on_redis_stacks!(
    accepting_a_placement_writes_no_row_and_resolving_it_writes_one,
    a_queue_too_far_behind_refuses_new_placements_and_takes_nothing,
);

/// Every placement row: (id, status), by id.
async fn placement_rows(t: &TestApp) -> Vec<(String, String)> {
    let conn = t.db.connect().await.expect("db");
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT id, status FROM placements ORDER BY id",
        ))
        .await
        .expect("query");
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "id").expect("id"),
                r.try_get::<String>("", "status").expect("status"),
            )
        })
        .collect()
}

/// The keys of recorded placements under the service's Redis prefix (records, queue,
/// key indexes), with a connection to that Redis.
async fn recorded(t: &TestApp) -> (redis::aio::MultiplexedConnection, Vec<String>) {
    let redis = t.redis.as_ref().expect("a Redis stack");
    let mut conn = redis::Client::open(redis.url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:pl*", redis.prefix))
        .query_async(&mut conn)
        .await
        .expect("keys");
    (conn, keys)
}

/// How many keys of recorded placements the service's Redis prefix holds.
async fn recorded_keys(t: &TestApp) -> usize {
    recorded(t).await.1.len()
}

fn accepted(answer: Result<PlaceOrderAnswer, flash_sale_client::ClientError>) -> PlacementDto {
    match answer {
        Ok(PlaceOrderAnswer::Accepted(placement)) => placement,
        other => panic!("async answers 202: {other:?}"),
    }
}

async fn accepting_a_placement_writes_no_row_and_resolving_it_writes_one(backend: Backend) {
    // Accepts placements, consumes none (yet).
    let mut t = TestApp::spawn_with(backend, |s| s.mq.consume = false).await;
    let p = async_product(&t, 10, 2).await;
    let one = OrderPlaceCmd {
        product_id: p,
        quantity: 1,
    };
    let (alice, bob) = (t.buyer("rec-alice"), t.buyer("rec-bob"));
    let first = accepted(alice.place_order(&one, Some("k1")).await);
    let second = accepted(bob.place_order(&one, None).await);

    assert_eq!(
        placement_rows(&t).await,
        vec![],
        "a 202 wrote no placement row"
    );
    assert_eq!(
        recorded_keys(&t).await,
        4,
        "two records, the queue, one key index"
    );
    let polled = alice.placement(&first.id).await.expect("poll");
    assert_eq!(polled.status, PlacementStatusDto::Queued);
    let replayed = accepted(alice.place_order(&one, Some("k1")).await);
    assert_eq!(
        replayed.id, first.id,
        "the key answers the recorded placement"
    );
    let error = bob.placement(&first.id).await.expect_err("not bob's");
    assert_eq!(error.status(), Some(404));
    let inventory = t.admin.inventory(p).await.expect("inventory");
    assert_eq!((inventory.in_flight, inventory.held), (2, 0));

    t.restart_with(|s| s.mq.consume = true).await;
    let (alice, bob) = (t.buyer("rec-alice"), t.buyer("rec-bob"));
    for (buyer, placement) in [(&alice, &first), (&bob, &second)] {
        let done = resolved(buyer, placement).await;
        assert_eq!(done.status, PlacementStatusDto::Succeeded, "{done:?}");
    }
    let mut expected = vec![
        (first.id.clone(), "succeeded".to_owned()),
        (second.id.clone(), "succeeded".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        placement_rows(&t).await,
        expected,
        "one row each, written resolved"
    );
    assert_eq!(
        recorded_keys(&t).await,
        0,
        "the records went with their rows"
    );
    let replayed = accepted(alice.place_order(&one, Some("k1")).await);
    assert_eq!(
        (replayed.id, replayed.status),
        (first.id.clone(), PlacementStatusDto::Succeeded),
        "the key now answers the row"
    );
    let snapshot = t.snapshot(p).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (2, 8));
    snapshot.assert_invariants(2);
    let inventory = t.admin.inventory(p).await.expect("inventory");
    assert!(
        inventory.consistent && inventory.in_flight == 0,
        "{inventory:?}"
    );
    t.stop().await;
}

async fn a_queue_too_far_behind_refuses_new_placements_and_takes_nothing(backend: Backend) {
    use std::time::Duration;
    // Nobody consumes; two placements may be in the consumers' hands (1 × 2), and the
    // queue may fall 1.5 s behind beyond those (long enough for the third and fourth
    // placements below to be accepted together on a busy machine).
    let bound = Duration::from_millis(1_500);
    let mut t = TestApp::spawn_with(backend, |s| {
        s.mq.consume = false;
        s.mq.batch_size = 1;
        s.mq.consumers = 2;
        s.mq.max_queue_lag = flash_sale::config::HumanDuration(bound);
    })
    .await;
    let p = async_product(&t, 10, 1).await;
    let one = OrderPlaceCmd {
        product_id: p,
        quantity: 1,
    };
    let place = |n: usize, key: Option<&'static str>| {
        let buyer = t.buyer(&format!("lag-{n}"));
        async move { buyer.place_order(&one, key).await }
    };
    let mut placed = vec![accepted(place(0, Some("k0")).await)];
    placed.push(accepted(place(1, None).await));
    tokio::time::sleep(bound + Duration::from_millis(400)).await;
    // Two old placements are no backlog: the consumers could be writing them.
    placed.push(accepted(place(2, None).await));
    placed.push(accepted(place(3, None).await));
    tokio::time::sleep(bound + Duration::from_millis(400)).await;

    // The third has waited past the bound: the queue is behind.
    let refused = place(4, None).await.expect_err("the queue is behind");
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(503), Some(flash_sale_client::ErrorCode::Unavailable)),
        "{refused:?}"
    );
    let message = &refused.body().expect("the envelope").message;
    assert!(message.contains("behind"), "{message}");
    let inventory = t.admin.inventory(p).await.expect("inventory");
    assert_eq!(
        (inventory.in_flight, inventory.cache_available),
        (4, 6),
        "the refused placement took nothing: {inventory:?}"
    );
    assert_eq!(
        recorded_keys(&t).await,
        4 + 1 + 1,
        "four records, the queue, one key"
    );
    // An accepted placement's key still answers it.
    let replayed = accepted(place(0, Some("k0")).await);
    assert_eq!(replayed.id, placed[0].id);

    t.restart_with(|s| s.mq.consume = true).await;
    for (n, placement) in placed.iter().enumerate() {
        let done = resolved(&t.buyer(&format!("lag-{n}")), placement).await;
        assert_eq!(done.status, PlacementStatusDto::Succeeded, "{done:?}");
    }
    // Caught up: the refused buyer (whose quota was not taken) is accepted now.
    let late = accepted(t.buyer("lag-4").place_order(&one, None).await);
    let done = resolved(&t.buyer("lag-4"), &late).await;
    assert_eq!(done.status, PlacementStatusDto::Succeeded, "{done:?}");
    let snapshot = t.snapshot(p).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (5, 5));
    snapshot.assert_invariants(5);
    t.stop().await;
}

mod on_rocketmq {
    use super::*;

    crate::on_rocketmq_stacks!(a_placement_redis_lost_is_written_from_its_broker_message);
}

/// Deletes every key of recorded placements (records, queue, key indexes).
async fn lose_records(t: &TestApp) {
    let (mut conn, keys) = recorded(t).await;
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .expect("del");
}

async fn a_placement_redis_lost_is_written_from_its_broker_message(backend: Backend) {
    // The broker keeps the task until a consuming instance comes.
    let mut t = TestApp::spawn_with(backend, |s| s.mq.consume = false).await;
    let p = async_product(&t, 10, 1).await;
    let one = OrderPlaceCmd {
        product_id: p,
        quantity: 1,
    };
    let placement = accepted(t.buyer("lost").place_order(&one, Some("k")).await);
    lose_records(&t).await;
    let error = t
        .buyer("lost")
        .placement(&placement.id)
        .await
        .expect_err("neither a record nor a row");
    assert_eq!(error.status(), Some(404));

    t.restart_with(|s| s.mq.consume = true).await;
    let buyer = t.buyer("lost");
    let started = std::time::Instant::now();
    let done = loop {
        if let Ok(now) = buyer.placement(&placement.id).await
            && now.status != PlacementStatusDto::Queued
        {
            break now;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_mins(1),
            "the broker's message never became the order"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(done.status, PlacementStatusDto::Succeeded, "{done:?}");
    let snapshot = t.snapshot(p).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (1, 9));
    snapshot.assert_invariants(1);
    t.stop().await;
}
