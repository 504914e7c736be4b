//! The buckets strategy's live re-arrangement: `POST /admin/products/{id}/buckets`
//! re-splits the unsold units while buyers order, and every unit stays accounted for,
//! bucket by bucket.

use std::collections::HashMap;
use std::time::Duration;

use flash_sale_client::{ErrorCode, StrategyDto};
use flash_sale_tests::{Backend, DbSnapshot, TestApp, product, running_event};
use futures::StreamExt;

use super::switching::place_any;

crate::on_every_stack!(re_arranging_buckets_while_buyers_order_keeps_every_unit_in_its_bucket);

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
            order.bucket_no < i64::try_from(count).expect("small"),
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
