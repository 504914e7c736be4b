//! The read cache under attack and across instances: penetration (unknown ids),
//! breakdown (a hot entry dropped), invalidation by pub/sub, a sale split across two
//! instances, and Redis losing everything mid-sale.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale::config::SecretUrl;
use flash_sale_client::{ErrorCode, OrderPlaceCmd, PlaceOrderAnswer, ProductPatchCmd};
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{GatewayError, ProductGateway, Relay, StockStateSink};
use flash_sale_domain::ledger::{LedgerEntry, LedgerReason};
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::product::{NewProduct, Product, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket};
use flash_sale_tests::{Backend, TestApp, online_product};
use futures::StreamExt;

mod every_stack {
    use super::*;
    crate::on_every_stack!(
        unknown_product_ids_cost_a_few_database_queries_however_often_they_are_asked,
        a_thousand_reads_of_a_dropped_entry_cause_one_database_load,
    );
}

mod with_redis {
    use super::*;
    crate::on_redis_stacks!(
        two_instances_drop_a_changed_entry_at_once_and_load_it_once,
        a_sale_split_across_two_instances_keeps_every_invariant,
        redis_losing_everything_mid_sale_never_oversells,
    );
}

/// Counts `find` on the wrapped product gateway: one database query each.
struct CountingProducts {
    inner: Arc<dyn ProductGateway>,
    finds: Arc<AtomicUsize>,
}

#[async_trait]
impl ProductGateway for CountingProducts {
    async fn insert(
        &self,
        product: NewProduct,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError> {
        self.inner.insert(product, now).await
    }
    async fn find(&self, id: ProductId) -> Result<Option<Product>, GatewayError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find(id).await
    }
    async fn list_for_event(&self, event_id: EventId) -> Result<Vec<Product>, GatewayError> {
        self.inner.list_for_event(event_id).await
    }
    async fn count_for_event(&self, event_id: EventId) -> Result<u64, GatewayError> {
        self.inner.count_for_event(event_id).await
    }
    async fn update(&self, product: &Product) -> Result<(), GatewayError> {
        self.inner.update(product).await
    }
    async fn buckets(&self, id: ProductId) -> Result<Vec<StockBucket>, GatewayError> {
        self.inner.buckets(id).await
    }
    async fn available(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, i64>, GatewayError> {
        self.inner.available(ids).await
    }
    async fn adjust_stock(
        &self,
        id: ProductId,
        deltas: &[BucketDelta],
        reason: LedgerReason,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError> {
        self.inner
            .adjust_stock(id, deltas, reason, reference, now)
            .await
    }
    async fn relay<'s>(
        &self,
        id: ProductId,
        relay: Relay,
        now: DateTime<Utc>,
        sink: &'s (dyn StockStateSink + 's),
    ) -> Result<Product, GatewayError> {
        self.inner.relay(id, relay, now, sink).await
    }
    async fn stock_snapshot(
        &self,
        id: ProductId,
        tokens: &[String],
    ) -> Result<(Vec<StockBucket>, HashSet<String>), GatewayError> {
        self.inner.stock_snapshot(id, tokens).await
    }
    async fn ledger(
        &self,
        id: ProductId,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, GatewayError> {
        self.inner.ledger(id, page).await
    }
    async fn ledger_sum(&self, id: ProductId) -> Result<i64, GatewayError> {
        self.inner.ledger_sum(id).await
    }
}

fn counting(finds: &Arc<AtomicUsize>) -> flash_sale::PortsHook {
    let finds = finds.clone();
    Box::new(move |ports| {
        ports.products = Arc::new(CountingProducts {
            inner: ports.products.clone(),
            finds,
        });
    })
}

async fn unknown_product_ids_cost_a_few_database_queries_however_often_they_are_asked(
    backend: Backend,
) {
    let finds = Arc::new(AtomicUsize::new(0));
    let t = TestApp::spawn_hooked(backend, |_| {}, counting(&finds)).await;
    let buyer = t.buyer("prober");
    let statuses = futures::stream::iter(0..5000)
        .map(|i| {
            let buyer = buyer.clone();
            async move {
                let id = 900_000 + i % 50;
                buyer.product(id).await.expect_err("unknown").code()
            }
        })
        .buffer_unordered(500)
        .collect::<Vec<_>>()
        .await;
    assert!(statuses.iter().all(|c| *c == Some(ErrorCode::NotFound)));
    let queries = finds.load(Ordering::SeqCst);
    assert!(
        queries <= 50 * 3,
        "{queries} database queries for 5,000 lookups of 50 unknown ids"
    );
    eprintln!("5,000 lookups of 50 unknown ids: {queries} database queries");
    t.stop().await;
}

async fn a_thousand_reads_of_a_dropped_entry_cause_one_database_load(backend: Backend) {
    let finds = Arc::new(AtomicUsize::new(0));
    let t = TestApp::spawn_hooked(backend, |_| {}, counting(&finds)).await;
    let (_, p) = online_product(&t.admin, 10, 1).await;
    let buyer = t.buyer("reader");
    buyer.product(p.id).await.expect("warm");
    // An admin change drops the entry from every level.
    t.admin
        .patch_product(
            p.id,
            &ProductPatchCmd {
                title: Some("Hot".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    tokio::time::sleep(Duration::from_millis(50)).await;
    finds.store(0, Ordering::SeqCst);
    let titles = futures::stream::iter(0..1000)
        .map(|_| {
            let buyer = buyer.clone();
            async move { buyer.product(p.id).await.expect("read").title }
        })
        .buffer_unordered(500)
        .collect::<Vec<_>>()
        .await;
    assert!(titles.iter().all(|t| t == "Hot"));
    assert_eq!(
        finds.load(Ordering::SeqCst),
        1,
        "one load for 1,000 concurrent misses"
    );
    t.stop().await;
}

async fn two_instances_drop_a_changed_entry_at_once_and_load_it_once(backend: Backend) {
    let finds = Arc::new(AtomicUsize::new(0));
    // A long local TTL: only the pub/sub notice can explain a quick refresh.
    let t = TestApp::spawn_hooked(
        backend,
        |s| s.cache.local_ttl = flash_sale::config::HumanDuration(Duration::from_mins(1)),
        counting(&finds),
    )
    .await;
    let other = t.sibling_hooked(counting(&finds)).await;
    let (_, p) = online_product(&t.admin, 10, 1).await;
    let on_a = t.buyer("a-reader");
    let on_b = t.buyer_of(&other, "b-reader");
    assert_eq!(on_b.product(p.id).await.expect("read").title, "Phone");

    t.admin
        .patch_product(
            p.id,
            &ProductPatchCmd {
                title: Some("Phone 2".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch on A");
    let started = std::time::Instant::now();
    loop {
        if on_b.product(p.id).await.expect("read").title == "Phone 2" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "B still serves the old entry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("B saw A's change after {:?}", started.elapsed());

    // Breakdown across instances: both drop the entry, 1,000 reads, one load.
    t.admin
        .patch_product(
            p.id,
            &ProductPatchCmd {
                title: Some("Phone 3".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch");
    tokio::time::sleep(Duration::from_millis(100)).await;
    finds.store(0, Ordering::SeqCst);
    let reads = futures::stream::iter(0..1000)
        .map(|i| {
            let client = if i % 2 == 0 {
                on_a.clone()
            } else {
                on_b.clone()
            };
            async move { client.product(p.id).await.expect("read").title }
        })
        .buffer_unordered(500)
        .collect::<Vec<_>>()
        .await;
    assert!(reads.iter().all(|t| t == "Phone 3"));
    assert_eq!(
        finds.load(Ordering::SeqCst),
        1,
        "one database load across both instances"
    );
    other.shutdown(Duration::from_secs(5)).await.expect("stops");
    t.stop().await;
}

async fn a_sale_split_across_two_instances_keeps_every_invariant(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let other = t.sibling().await;
    let (_, p) = online_product(&t.admin, 120, 1).await;
    let results = futures::stream::iter(0..300)
        .map(|i| {
            let buyer = if i % 2 == 0 {
                t.buyer(&format!("split-{i}"))
            } else {
                t.buyer_of(&other, &format!("split-{i}"))
            };
            async move {
                buyer
                    .place_order(
                        &OrderPlaceCmd {
                            product_id: p.id,
                            quantity: 1,
                        },
                        Some("k"),
                    )
                    .await
                    .map_err(|e| e.code())
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let sold = results
        .iter()
        .filter(|r| matches!(r, Ok(PlaceOrderAnswer::Created(_))))
        .count();
    assert_eq!(sold, 120);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(Some(ErrorCode::SoldOut))))
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (120, 0));
    snapshot.assert_invariants(1);
    for admin in [&t.admin, &t.admin_of(&other)] {
        let inventory = admin.inventory(p.id).await.expect("inventory");
        assert!(inventory.consistent, "{inventory:?}");
        assert_eq!(inventory.cache_available, 0, "one shared stock view");
    }
    other.shutdown(Duration::from_secs(5)).await.expect("stops");
    t.stop().await;
}

async fn redis_losing_everything_mid_sale_never_oversells(backend: Backend) {
    // A Redis database of its own: FLUSHDB must not touch other tests' keys.
    let db = if backend == Backend::MariaDbRedis {
        14
    } else {
        15
    };
    let url = format!("redis://127.0.0.1:6379/{db}");
    let t = TestApp::spawn_with(backend, |s| s.redis.url = SecretUrl::new(url.as_str())).await;
    let (_, p) = online_product(&t.admin, 300, 1).await;
    let mut conn = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let flushed = Arc::new(AtomicUsize::new(0));
    let results = futures::stream::iter(0..600)
        .map(|i| {
            let buyer = t.buyer(&format!("flush-{i}"));
            let (flushed, mut conn) = (flushed.clone(), conn.clone());
            async move {
                if i == 150 && flushed.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _: () = redis::cmd("FLUSHDB")
                        .query_async(&mut conn)
                        .await
                        .expect("flush");
                }
                buyer
                    .place_order(
                        &OrderPlaceCmd {
                            product_id: p.id,
                            quantity: 1,
                        },
                        Some("k"),
                    )
                    .await
                    .map_err(|e| e.code())
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    assert!(
        results.iter().all(|r| matches!(
            r,
            Ok(_) | Err(Some(ErrorCode::SoldOut | ErrorCode::Unavailable))
        )),
        "{:?}",
        results
            .iter()
            .filter(|r| r.is_err())
            .take(5)
            .collect::<Vec<_>>()
    );
    let snapshot = t.snapshot(p.id).await;
    snapshot.assert_invariants(1);
    assert!(snapshot.held() <= 300, "never oversold");

    // Recovery: reconcile, then the rest of the stock sells, to the last unit.
    let reconcile = t.admin.reconcile(p.id).await.expect("reconcile");
    assert!(reconcile.consistent, "{reconcile:?}");
    let rest = futures::stream::iter(0..400)
        .map(|i| {
            let buyer = t.buyer(&format!("after-{i}"));
            async move {
                buyer
                    .place_order(
                        &OrderPlaceCmd {
                            product_id: p.id,
                            quantity: 1,
                        },
                        None,
                    )
                    .await
                    .map_err(|e| e.code())
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    assert!(
        rest.iter()
            .all(|r| matches!(r, Ok(_) | Err(Some(ErrorCode::SoldOut))))
    );
    let snapshot = t.snapshot(p.id).await;
    assert_eq!(
        (snapshot.held(), snapshot.db_available()),
        (300, 0),
        "nothing lost, nothing oversold"
    );
    snapshot.assert_invariants(1);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut conn)
        .await
        .expect("cleanup");
    t.stop().await;
}

mod on_a_cluster {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs MariaDB on 127.0.0.1:3306 and redis-server/redis-cli installed; run scripts/test-all.sh"]
    async fn mariadb() {
        Box::pin(
            a_sale_on_a_redis_cluster_spreads_buckets_and_keeps_every_invariant(Backend::MariaDb),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL on 127.0.0.1:5432 and redis-server/redis-cli installed; run scripts/test-all.sh"]
    async fn postgres() {
        Box::pin(
            a_sale_on_a_redis_cluster_spreads_buckets_and_keeps_every_invariant(Backend::Postgres),
        )
        .await;
    }
}

async fn a_sale_on_a_redis_cluster_spreads_buckets_and_keeps_every_invariant(backend: Backend) {
    let cluster = flash_sale_tests::TestCluster::start()
        .await
        .expect("a private Redis Cluster");
    let url = cluster.url();
    let t = TestApp::spawn_with(backend, |s| {
        s.redis.url = SecretUrl::new(url.as_str());
        s.redis.key_prefix = "cl".into();
    })
    .await;
    let other = t.sibling().await;
    let event = t
        .admin
        .create_event(&flash_sale_tests::running_event("Cluster", None))
        .await
        .expect("event");
    let mut spec = flash_sale_tests::product("Spread", 150, 1);
    spec.bucket_count = Some(6);
    let p = t
        .admin
        .create_product(event.id, &spec)
        .await
        .expect("product");
    t.admin.event_online(event.id).await.expect("online");

    let spread = cluster.keys_per_node(&format!("{{cl:p{}:b*", p.id));
    assert!(
        spread.iter().filter(|(_, n)| *n > 0).count() >= 2,
        "buckets on one node only: {spread:?}"
    );

    let results = futures::stream::iter(0..300)
        .map(|i| {
            let buyer = if i % 2 == 0 {
                t.buyer(&format!("c-{i}"))
            } else {
                t.buyer_of(&other, &format!("c-{i}"))
            };
            async move {
                buyer
                    .place_order(
                        &OrderPlaceCmd {
                            product_id: p.id,
                            quantity: 1,
                        },
                        Some("k"),
                    )
                    .await
                    .map_err(|e| e.code())
            }
        })
        .buffer_unordered(60)
        .collect::<Vec<_>>()
        .await;
    let orders: Vec<_> = results
        .iter()
        .filter_map(|r| match r {
            Ok(PlaceOrderAnswer::Created(o)) => Some(o.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(orders.len(), 150, "every unit sold, none oversold");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(Some(ErrorCode::SoldOut))))
    );
    for order in orders.iter().take(30) {
        t.buyer(&order.user_id)
            .cancel(&order.id)
            .await
            .expect("cancel");
    }
    let snapshot = t.snapshot(p.id).await;
    assert_eq!((snapshot.held(), snapshot.db_available()), (120, 30));
    snapshot.assert_invariants(1);
    let inventory = t.admin.inventory(p.id).await.expect("inventory");
    assert!(inventory.consistent, "{inventory:?}");
    assert!(
        inventory
            .buckets
            .iter()
            .all(|b| b.cache_available == b.db_available),
        "each unit went back to its own bucket: {inventory:?}"
    );
    let reconcile = t.admin.reconcile(p.id).await.expect("reconcile");
    assert_eq!((reconcile.drift_before, reconcile.consistent), (0, true));
    other.shutdown(Duration::from_secs(5)).await.expect("stops");
    t.stop().await;
}
