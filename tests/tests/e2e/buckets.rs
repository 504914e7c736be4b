//! The buckets strategy's live re-arrangement: `POST /admin/products/{id}/buckets`
//! re-splits the unsold units while buyers order, and every unit stays accounted for,
//! bucket by bucket.

use std::collections::HashMap;
use std::time::Duration;

use flash_sale_client::{ErrorCode, OrderDto, StrategyDto};
use flash_sale_domain::UserId;
use flash_sale_domain::stock::home_bucket;
use flash_sale_tests::{Backend, DbSnapshot, TestApp, product, running_event};
use futures::StreamExt;

use super::switching::place_any;

crate::on_every_stack!(
    re_arranging_buckets_while_buyers_order_keeps_every_unit_in_its_bucket,
    one_bucket_sells_every_unit_once,
    seven_buckets_sell_every_unit_once,
    sixty_four_buckets_sell_every_unit_once,
    skewed_home_buckets_drain_every_bucket_without_a_false_sold_out,
    a_cancel_returns_units_to_the_bucket_they_came_from,
    bucketed_orders_are_paid_or_expire_back_into_their_bucket,
);

/// Per bucket: Σ ledger deltas equals the bucket's `available`, and no bucket row
/// exists past the product's bucket count.
fn assert_buckets_balance(snapshot: &DbSnapshot, count: usize) {
    assert_eq!(snapshot.buckets.len(), count, "{:?}", snapshot.buckets);
    let mut ledger: HashMap<i64, i64> = HashMap::new();
    for (bucket, delta, _) in &snapshot.ledger {
        *ledger.entry(*bucket).or_default() += delta;
    }
    for (bucket, _, available) in &snapshot.buckets {
        assert_eq!(
            ledger.get(bucket).copied().unwrap_or(0),
            *available,
            "bucket {bucket}: ledger vs available"
        );
    }
    for (bucket, sum) in ledger {
        assert!(
            bucket < i64::try_from(count).expect("small") || sum == 0,
            "bucket {bucket} was folded but still holds {sum} in the ledger"
        );
    }
    for order in snapshot.orders.iter().filter(|o| o.is_live()) {
        assert!(
            order
                .parts
                .iter()
                .all(|(b, _)| *b < i64::try_from(count).expect("small")),
            "a live order in a bucket that no longer exists: {order:?}"
        );
    }
}

async fn re_arranging_buckets_while_buyers_order_keeps_every_unit_in_its_bucket(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let event = t
        .admin
        .create_event(&running_event("Buckets", Some(StrategyDto::Buckets)))
        .await
        .expect("event");
    let mut spec = product("Kettle", 300, 1);
    spec.bucket_count = Some(8);
    let p = t
        .admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    // 200 buyers over two seconds while the product goes 8 → 3 → 16 buckets.
    let buying = futures::stream::iter(0..200_u64)
        .map(|i| {
            let buyer = t.buyer(&format!("k-{i}"));
            async move {
                tokio::time::sleep(Duration::from_millis(10 * i)).await;
                place_any(&buyer, p.id).await
            }
        })
        .buffer_unordered(200)
        .collect::<Vec<_>>();
    let re_arranging = async {
        for count in [3, 16] {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let mut tries = 0;
            let product = loop {
                match t.admin.product_buckets(p.id, count).await {
                    Ok(product) => break product,
                    Err(e) if e.code() == Some(ErrorCode::Unavailable) && tries < 20 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("re-arranging to {count}: {e}"),
                }
            };
            assert_eq!(product.bucket_count, count);
        }
    };
    let (results, ()) = tokio::join!(buying, re_arranging);
    let orders: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().expect("stock for everyone").clone())
        .collect();
    assert_eq!(orders.len(), 200);

    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (200, 100));
    snapshot.assert_invariants(1);
    assert_buckets_balance(&snapshot, 16);
    assert!(snapshot.ledger.iter().any(|l| l.2 == "rebalanced"));
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    assert_eq!(inventory.buckets.len(), 16);
    assert!(
        inventory
            .buckets
            .iter()
            .all(|b| b.cache_available == b.db_available),
        "the ledger and the database agree bucket by bucket: {inventory:?}"
    );

    // Every order cancelled, whichever bucket it was placed in: each unit comes back
    // to the bucket its order now names, and the product holds all 300 again.
    futures::stream::iter(&orders)
        .map(|o| {
            let buyer = t.buyer(&o.user_id);
            async move { buyer.cancel(&o.id).await.expect("cancel") }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (0, 300));
    snapshot.assert_invariants(1);
    assert_buckets_balance(&snapshot, 16);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(
        inventory.consistent
            && inventory
                .buckets
                .iter()
                .all(|b| b.cache_available == b.db_available),
        "{inventory:?}"
    );
    t.stop().await;
}

/// An online `buckets` event with one product of `stock` units in `buckets` buckets.
async fn bucketed(t: &TestApp, stock: i64, limit: u32, buckets: u32) -> i64 {
    let event = t
        .admin
        .create_event(&running_event("Buckets", Some(StrategyDto::Buckets)))
        .await
        .expect("event");
    let mut spec = product("Kettle", stock, limit);
    spec.bucket_count = Some(buckets);
    let p = t
        .admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    assert_eq!(p.bucket_count, buckets);
    t.admin.event_online(event.id).await.expect("online");
    p.id
}

/// The order suite's core under `buckets` buckets: 400 buyers (every 4th sends two
/// orders at once, each retries its first key) for 200 units at 2 per buyer; then a
/// third cancelled concurrently, twice each, and exactly those units sold again.
async fn sells_every_unit_once(backend: Backend, buckets: u32) {
    let t = TestApp::spawn(backend).await;
    let p = bucketed(&t, 200, 2, buckets).await;
    let attempts = futures::stream::iter(0..400)
        .map(|i| {
            let buyer = t.buyer(&format!("b{buckets}-{i}"));
            async move {
                let keys: Vec<String> = (0..if i % 4 == 0 { 2 } else { 1 })
                    .map(|k| format!("k{k}"))
                    .collect();
                let results =
                    futures::future::join_all(keys.iter().map(|key| place_keyed(&buyer, p, key)))
                        .await;
                let again = place_keyed(&buyer, p, &keys[0]).await;
                (results, again)
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let mut orders: Vec<OrderDto> = Vec::new();
    for (results, again) in &attempts {
        for result in results {
            match result {
                Ok(order) => orders.push(order.clone()),
                Err(code) => assert!(
                    matches!(code, ErrorCode::SoldOut | ErrorCode::LimitExceeded),
                    "{code}"
                ),
            }
        }
        if let Ok(first) = &results[0] {
            assert_eq!(
                again.as_ref().map(|o| &o.id),
                Ok(&first.id),
                "a key replays its order"
            );
        }
    }
    assert_eq!(orders.len(), 200, "every unit sold once");
    let snapshot = t.snapshot(p).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (200, 0));
    snapshot.assert_invariants(2);
    assert_buckets_balance(&snapshot, buckets as usize);

    let cancelled: Vec<&OrderDto> = orders.iter().step_by(3).collect();
    t.cancel_each_twice(&cancelled).await;
    let resold = futures::stream::iter(0..cancelled.len() + 20)
        .map(|i| {
            let buyer = t.buyer(&format!("late{buckets}-{i}"));
            async move { place_keyed(&buyer, p, "late").await }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(resold.iter().filter(|r| r.is_ok()).count(), cancelled.len());
    let snapshot = t.snapshot(p).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (200, 0));
    snapshot.assert_invariants(2);
    assert_buckets_balance(&snapshot, buckets as usize);
    let inventory = t.admin.inventory(p).await.expect("inventory");
    assert!(
        inventory.consistent
            && inventory
                .buckets
                .iter()
                .all(|b| b.cache_available == b.db_available),
        "{inventory:?}"
    );
    t.stop().await;
}

/// One order with `key`, retried through 503s and transport errors.
async fn place_keyed(
    buyer: &flash_sale_client::FlashSaleClient,
    product_id: i64,
    key: &str,
) -> Result<OrderDto, ErrorCode> {
    match flash_sale_tests::place_until_answered(buyer, product_id, 1, Some(key)).await? {
        flash_sale_client::PlaceOrderAnswer::Created(order) => Ok(order),
        other @ flash_sale_client::PlaceOrderAnswer::Accepted(_) => {
            panic!("a buckets event answered {other:?}")
        }
    }
}

async fn one_bucket_sells_every_unit_once(backend: Backend) {
    sells_every_unit_once(backend, 1).await;
}

async fn seven_buckets_sell_every_unit_once(backend: Backend) {
    sells_every_unit_once(backend, 7).await;
}

async fn sixty_four_buckets_sell_every_unit_once(backend: Backend) {
    sells_every_unit_once(backend, 64).await;
}

/// `n` user names whose home bucket (of `buckets`) is `bucket`.
fn users_at_home_in(bucket: u32, buckets: u32, n: usize, tag: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{tag}-{i}"))
        .filter(|name| home_bucket(&UserId::parse(name).expect("user"), buckets) == bucket)
        .take(n)
        .collect()
}

async fn skewed_home_buckets_drain_every_bucket_without_a_false_sold_out(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let p = bucketed(&t, 80, 1, 8).await;
    // 90 of 100 buyers call bucket 0 home; it holds 10 of the 80 units.
    let mut users = users_at_home_in(0, 8, 90, "skew");
    users.extend(users_at_home_in(5, 8, 10, "other"));
    let results = futures::stream::iter(&users)
        .map(|user| {
            let buyer = t.buyer(user);
            async move { place_keyed(&buyer, p, "k").await }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    let sold = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        sold, 80,
        "every unit sold although most buyers share one home bucket"
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(ErrorCode::SoldOut)))
    );
    let snapshot = t.snapshot(p).await;
    assert!(
        snapshot.buckets.iter().all(|b| b.2 == 0),
        "{:?}",
        snapshot.buckets
    );
    snapshot.assert_invariants(1);
    assert_buckets_balance(&snapshot, 8);
    let metrics = t.anon.metrics().await.expect("metrics");
    for series in [
        "flash_sale_bucket_reservations_total{bucket=\"0\"}",
        "flash_sale_bucket_misses_total{bucket=\"0\"}",
        "flash_sale_bucket_probes_total{bucket=",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    t.stop().await;
}

async fn a_cancel_returns_units_to_the_bucket_they_came_from(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let p = bucketed(&t, 40, 1, 4).await;
    let mut orders = Vec::new();
    for bucket in 0..4 {
        for user in users_at_home_in(bucket, 4, 3, &format!("home{bucket}")) {
            let order = place_keyed(&t.buyer(&user), p, "k").await.expect("order");
            assert_eq!(
                order.bucket_no, bucket,
                "a buyer with stock at home buys there"
            );
            orders.push(order);
        }
    }
    let before = t.snapshot(p).await;
    // Cancel two of each bucket's three.
    let cancelled: Vec<&OrderDto> = orders
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, o)| o)
        .collect();
    futures::stream::iter(&cancelled)
        .map(|o| {
            let buyer = t.buyer(&o.user_id);
            async move { buyer.cancel(&o.id).await.expect("cancel") }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let after = t.snapshot(p).await;
    for ((bucket, _, was), (_, _, now)) in before.buckets.iter().zip(&after.buckets) {
        let back = cancelled
            .iter()
            .filter(|o| i64::from(o.bucket_no) == *bucket)
            .count();
        assert_eq!(
            now - was,
            i64::try_from(back).expect("small"),
            "bucket {bucket}"
        );
    }
    after.assert_invariants(1);
    assert_buckets_balance(&after, 4);
    let inventory = t.admin.inventory(p).await.expect("inventory");
    assert!(
        inventory
            .buckets
            .iter()
            .all(|b| b.cache_available == b.db_available),
        "the ledger and the database agree bucket by bucket: {inventory:?}"
    );
    t.stop().await;
}

async fn bucketed_orders_are_paid_or_expire_back_into_their_bucket(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.orders.payment_timeout = flash_sale::config::HumanDuration(Duration::from_secs(2));
    })
    .await;
    let p = bucketed(&t, 14, 2, 7).await;
    let payer = users_at_home_in(2, 7, 1, "payer").remove(0);
    let idler = users_at_home_in(5, 7, 1, "idler").remove(0);
    let paid = place_keyed(&t.buyer(&payer), p, "p1").await.expect("order");
    let unpaid = place_keyed(&t.buyer(&idler), p, "i1").await.expect("order");
    assert_eq!((paid.bucket_no, unpaid.bucket_no), (2, 5));
    let paid = t
        .buyer(&payer)
        .pay(
            &paid.id,
            &flash_sale_client::OrderPayCmd {
                transaction_id: "tx-bucket-1".into(),
                amount: paid.total_price,
            },
        )
        .await
        .expect("paid");
    assert_eq!(paid.status, flash_sale_client::OrderStatusDto::Paid);
    let deadline = unpaid.expires_at + chrono::Duration::seconds(3);
    loop {
        let order = t.buyer(&idler).order(&unpaid.id).await.expect("own order");
        if order.status == flash_sale_client::OrderStatusDto::Expired {
            break;
        }
        assert!(
            chrono::Utc::now() < deadline,
            "not expired within 3 s of expires_at"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = t
        .buyer(&idler)
        .pay(
            &unpaid.id,
            &flash_sale_client::OrderPayCmd {
                transaction_id: "tx-bucket-2".into(),
                amount: unpaid.total_price,
            },
        )
        .await
        .expect_err("too late");
    assert_eq!(late.code(), Some(ErrorCode::InvalidState));
    let snapshot = t.snapshot(p).await;
    let available: HashMap<i64, i64> = snapshot.buckets.iter().map(|b| (b.0, b.2)).collect();
    assert_eq!(
        (available[&2], available[&5]),
        (1, 2),
        "the paid unit stays sold; the expired one went back to bucket 5"
    );
    assert!(
        snapshot
            .ledger
            .iter()
            .any(|l| l.0 == 5 && l.2 == "order_expired")
    );
    snapshot.assert_invariants(2);
    assert_buckets_balance(&snapshot, 7);
    // The expiry commits in the database first, then gives the unit back to the
    // ledger: the two agree bucket by bucket once that return has settled.
    let started = std::time::Instant::now();
    loop {
        let inventory = t.admin.inventory(p).await.expect("inventory");
        if inventory
            .buckets
            .iter()
            .all(|b| b.cache_available == b.db_available)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the ledger never caught up: {inventory:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.stop().await;
}
