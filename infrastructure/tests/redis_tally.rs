//! The console's attempt counts in a real Redis (`FLASH_SALE_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379/1`, under a key prefix of its own): what several instances
//! add up, per product and second, and old seconds pruned.

use flash_sale_domain::gateway::TallyGateway;
use flash_sale_domain::product::ProductId;
use flash_sale_infrastructure::redis::{Redis, RedisTally};

async fn redis() -> Redis {
    let url = std::env::var("FLASH_SALE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned());
    let prefix = format!("fst{}", uuid::Uuid::now_v7().simple());
    Redis::connect(&url, &prefix)
        .await
        .expect("Redis must be running")
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn instances_add_up_per_product_and_second_and_old_seconds_go() {
    let redis = redis().await;
    // Two instances on one Redis.
    let (one, two) = (
        RedisTally::new(redis.clone()),
        RedisTally::new(redis.clone()),
    );
    let (p, q) = (ProductId(3), ProductId(4));
    one.add(1000, &[(p, [2, 1, 0, 0, 0, 0]), (q, [1, 0, 0, 0, 0, 0])])
        .await
        .expect("add");
    two.add(1000, &[(p, [3, 0, 1, 0, 0, 0])])
        .await
        .expect("add");
    two.add(1001, &[(p, [0, 4, 0, 0, 0, 2])])
        .await
        .expect("add");
    let seen = one.since(p, 1000).await.expect("read");
    assert_eq!(
        seen,
        vec![(1000, [5, 1, 1, 0, 0, 0]), (1001, [0, 4, 0, 0, 0, 2])]
    );
    assert_eq!(two.since(p, 1001).await.expect("read").len(), 1);
    assert_eq!(
        two.since(q, 0).await.expect("read"),
        vec![(1000, [1, 0, 0, 0, 0, 0])]
    );
    assert!(one.since(ProductId(5), 0).await.expect("read").is_empty());

    // A read far later prunes the seconds no window reaches any more.
    assert!(one.since(p, 1000 + 400).await.expect("read").is_empty());
    assert!(
        one.since(p, 0).await.expect("read").is_empty(),
        "pruned from Redis"
    );
    assert!(redis.delete_prefix().await.expect("clean up") >= 1);
}
