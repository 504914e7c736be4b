//! The Lua scripts and locks against a real Redis (`FLASH_SALE_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379/1`), each test under a key prefix of its own that
//! is deleted afterwards. Every ledger test runs twice: with the single-node scripts
//! and with the cluster's two-step scripts.

use std::time::Duration;

use flash_sale_domain::UserId;
use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::gateway::{
    HoldKind, InFlight, LockGateway, Reservation, ReserveRequest, Settlement, StockLedger,
    Suspension,
};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::{BucketDelta, StockBucket, home_bucket};
use flash_sale_infrastructure::redis::{Redis, RedisLocks, RedisStockLedger};

const P: ProductId = ProductId(7);

struct Fixture {
    redis: Redis,
}

impl Fixture {
    async fn new() -> Self {
        let url = std::env::var("FLASH_SALE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned());
        let prefix = format!("fsl{}", uuid::Uuid::now_v7().simple());
        let redis = Redis::connect(&url, &prefix)
            .await
            .expect("Redis must be running");
        Self { redis }
    }

    fn ledgers(&self) -> [RedisStockLedger; 2] {
        [
            RedisStockLedger::new(self.redis.clone()),
            RedisStockLedger::split_scripts(self.redis.clone()),
        ]
    }

    async fn cleanup(self) {
        self.redis.delete_prefix().await.expect("cleanup");
    }
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid")
}

fn buckets(available: &[i64]) -> Vec<StockBucket> {
    available
        .iter()
        .zip(0..)
        .map(|(&available, bucket_no)| StockBucket {
            product_id: P,
            bucket_no,
            total: available,
            available,
        })
        .collect()
}

fn request<'a>(user: &'a UserId, quantity: u32, limit: u32, token: &'a str) -> ReserveRequest<'a> {
    ReserveRequest {
        product_id: P,
        user_id: user,
        quantity,
        limit,
        token,
        kind: HoldKind::Order,
        placement: None,
    }
}

fn reserved(reservation: Reservation) -> Allocation {
    match reservation {
        Reservation::Reserved { allocation, .. } => allocation,
        other => panic!("not reserved: {other:?}"),
    }
}

fn lease(owner: &str, ttl: Duration) -> Suspension {
    Suspension {
        owner: owner.to_owned(),
        ttl,
    }
}

async fn totals(ledger: &RedisStockLedger) -> (i64, i64) {
    let view = ledger.view(P).await.expect("view").expect("loaded");
    (view.available.iter().sum(), view.in_flight.iter().sum())
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn reserve_checks_the_quota_before_the_stock_and_replays_a_token() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let alice = user(&format!("alice{i}"));
        let product = P;
        ledger
            .resume(product, &lease("nobody", Duration::from_secs(1)))
            .await
            .expect("resume on nothing");
        // Each mode gets a fresh product state.
        ledger
            .load(product, &buckets(&[2]), &[], &[])
            .await
            .expect("load");
        let first = ledger
            .reserve(request(&alice, 2, 2, &format!("t1-{i}")))
            .await
            .expect("reserve");
        assert_eq!(reserved(first), Allocation::single(0, 2));
        let replay = ledger
            .reserve(request(&alice, 2, 2, &format!("t1-{i}")))
            .await
            .expect("replay");
        assert_eq!(
            reserved(replay),
            Allocation::single(0, 2),
            "the same token answers the same reservation"
        );
        assert_eq!(totals(ledger).await, (0, 2), "a replay takes nothing more");
        assert_eq!(
            ledger
                .reserve(request(&alice, 1, 2, &format!("t2-{i}")))
                .await
                .expect("reserve"),
            Reservation::LimitExceeded { used: 2 }
        );
        let bob = user(&format!("bob{i}"));
        assert_eq!(
            ledger
                .reserve(request(&bob, 1, 2, &format!("t3-{i}")))
                .await
                .expect("reserve"),
            Reservation::SoldOut { left: 0 }
        );
        ledger
            .settle(
                product,
                &format!("t1-{i}"),
                &Allocation::single(0, 2),
                Settlement::Released,
            )
            .await
            .expect("settle");
        assert_eq!(totals(ledger).await, (2, 0));
        assert!(
            matches!(
                ledger
                    .reserve(request(&bob, 2, 2, &format!("t4-{i}")))
                    .await
                    .expect("reserve"),
                Reservation::Reserved { .. }
            ),
            "released units and quota sell again"
        );
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn a_settlement_or_a_return_applies_once_however_often_it_is_sent() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let carol = user(&format!("carol{i}"));
        ledger
            .load(P, &buckets(&[3, 3]), &[], &[])
            .await
            .expect("load");
        let token = format!("s-{i}");
        let allocation = reserved(
            ledger
                .reserve(request(&carol, 1, 5, &token))
                .await
                .expect("reserve"),
        );
        assert_eq!(
            allocation.bucket_no(),
            home_bucket(&carol, 2),
            "the home bucket first"
        );
        for _ in 0..3 {
            ledger
                .settle(P, &token, &allocation, Settlement::Released)
                .await
                .expect("settle");
        }
        assert_eq!(
            totals(ledger).await,
            (6, 0),
            "released once, not three times"
        );

        let ret = format!("r-{i}");
        assert!(ledger.begin_return(P, &ret).await.expect("begin"));
        let back = [BucketDelta {
            bucket_no: 1,
            delta: 2,
        }];
        for _ in 0..3 {
            ledger
                .finish_return(P, &ret, &back, None)
                .await
                .expect("finish");
        }
        assert_eq!(totals(ledger).await, (8, 0), "returned once");
        assert!(
            !ledger
                .begin_return(ProductId(999), "x")
                .await
                .expect("begin"),
            "a product that is not loaded has nothing to return to"
        );
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn an_empty_home_bucket_sends_the_buyer_on_and_take_is_all_or_nothing() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let dave = user(&format!("dave{i}"));
        let mut layout = vec![0; 4];
        layout[((home_bucket(&dave, 4) + 1) % 4) as usize] = 1;
        ledger
            .load(P, &buckets(&layout), &[], &[])
            .await
            .expect("load");
        let reservation = ledger
            .reserve(request(&dave, 1, 5, &format!("h-{i}")))
            .await
            .expect("reserve");
        assert!(
            matches!(reservation, Reservation::Reserved { .. }),
            "{reservation:?}"
        );
        ledger
            .settle(
                P,
                &format!("h-{i}"),
                &Allocation::single(0, 1),
                Settlement::Committed,
            )
            .await
            .expect("settles with the record's own bucket");
        assert_eq!(totals(ledger).await, (0, 0));

        ledger
            .load(P, &buckets(&[5, 1]), &[], &[])
            .await
            .expect("reload");
        let too_much = [
            BucketDelta {
                bucket_no: 0,
                delta: -2,
            },
            BucketDelta {
                bucket_no: 1,
                delta: -2,
            },
        ];
        assert!(!ledger.take(P, &too_much).await.expect("take"));
        assert_eq!(totals(ledger).await, (6, 0), "nothing taken");
        let fine = [
            BucketDelta {
                bucket_no: 0,
                delta: -4,
            },
            BucketDelta {
                bucket_no: 1,
                delta: -1,
            },
        ];
        assert!(ledger.take(P, &fine).await.expect("take"));
        assert_eq!(totals(ledger).await, (1, 0));
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
#[expect(
    clippy::too_many_lines,
    reason = "one story: a suspension from start to end"
)]
async fn a_suspension_is_a_lease_and_a_lost_key_means_not_loaded() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let erin = user(&format!("erin{i}"));
        ledger
            .load(P, &buckets(&[4]), &[(erin.clone(), 1)], &[])
            .await
            .expect("load");
        let token = format!("w-{i}");
        let held = reserved(
            ledger
                .reserve(request(&erin, 1, 3, &token))
                .await
                .expect("reserve"),
        );
        assert!(
            ledger
                .begin_return(P, "r-in-progress")
                .await
                .expect("begins")
        );
        let mine = lease("me", Duration::from_secs(5));
        assert!(ledger.suspend(P, &mine).await.expect("suspend"));
        assert!(
            !ledger
                .suspend(P, &lease("other", Duration::from_secs(5)))
                .await
                .expect("answers"),
            "one owner at a time"
        );
        let view = ledger.view(P).await.expect("view").expect("loaded");
        assert!(view.suspended);
        assert_eq!(view.holds.len(), 1, "the work in progress shows");
        assert_eq!(
            (view.holds[0].token.as_str(), view.holds[0].kind),
            (token.as_str(), HoldKind::Order)
        );
        assert_eq!(view.returns.len(), 1);
        assert_eq!(
            ledger
                .reserve(request(&erin, 1, 3, &format!("w2-{i}")))
                .await
                .expect("reserve"),
            Reservation::Suspended
        );
        assert!(
            ledger.begin_return(P, "r").await.is_err(),
            "returns wait too"
        );
        ledger
            .settle(P, &token, &held, Settlement::Committed)
            .await
            .expect("settle");
        ledger
            .finish_return(P, "r-in-progress", &[], None)
            .await
            .expect("finish");
        assert!(ledger.renew(P, &mine).await.expect("renew"));
        let queued = InFlight {
            token: format!("p-{i}"),
            user_id: erin.clone(),
            allocation: Allocation::single(0, 1),
        };
        ledger
            .load(P, &buckets(&[3]), &[(erin.clone(), 2)], &[queued])
            .await
            .expect("reload under suspend");
        let view = ledger.view(P).await.expect("view").expect("loaded");
        assert!(view.suspended, "a reload keeps the suspension");
        assert_eq!((view.available, view.in_flight), (vec![2], vec![1]));
        assert_eq!(view.holds[0].kind, HoldKind::Placement);
        ledger
            .resume(P, &lease("other", Duration::from_secs(5)))
            .await
            .expect("ignored");
        assert!(
            ledger
                .view(P)
                .await
                .expect("view")
                .expect("loaded")
                .suspended
        );
        ledger.resume(P, &mine).await.expect("resume");
        assert_eq!(
            ledger
                .reserve(request(&erin, 2, 3, &format!("w3-{i}")))
                .await
                .expect("reserve"),
            Reservation::LimitExceeded { used: 2 },
            "quotas came from the reload"
        );
        let short = lease("brief", Duration::from_millis(50));
        assert!(ledger.suspend(P, &short).await.expect("suspend"));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            !ledger
                .view(P)
                .await
                .expect("view")
                .expect("loaded")
                .suspended,
            "a lease that is not renewed ends by itself"
        );

        // A bucket key vanishes (eviction, FLUSHDB): not loaded, never sold out.
        let mut conn = redis::Client::open(
            std::env::var("FLASH_SALE_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned()),
        )
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{{{}:p{}:b0}}", f.redis.prefix(), P.0))
            .query_async(&mut conn)
            .await
            .expect("del");
        let frank = user(&format!("frank{i}"));
        assert_eq!(
            ledger
                .reserve(request(&frank, 1, 3, &format!("w4-{i}")))
                .await
                .expect("reserve"),
            Reservation::NotLoaded
        );
        assert!(
            !ledger.is_loaded(P).await.expect("exists"),
            "the product must be rebuilt whole"
        );
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn many_concurrent_reservations_never_oversell_or_pass_a_limit() {
    let f = Fixture::new().await;
    for (mode, ledger) in f.ledgers().into_iter().enumerate() {
        let ledger = std::sync::Arc::new(ledger);
        ledger
            .load(P, &buckets(&[30, 30, 40]), &[], &[])
            .await
            .expect("load");
        let mut tasks = Vec::new();
        for i in 0..300 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let user = user(&format!("m{mode}-u{}", i % 120));
                let token = format!("c{mode}-{i}");
                ledger
                    .reserve(request(&user, 1 + i % 2, 3, &token))
                    .await
                    .expect("reserve")
            }));
        }
        let mut units = 0;
        for task in tasks {
            if let Reservation::Reserved { allocation, .. } = task.await.expect("joins") {
                units += allocation.quantity();
            }
        }
        assert_eq!(units, 100);
        assert_eq!(totals(&ledger).await, (0, 100));
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn a_lock_has_one_owner_and_only_the_owner_releases_it() {
    let f = Fixture::new().await;
    let locks = RedisLocks::new(f.redis.clone());
    let lease = locks
        .try_acquire("job", Duration::from_secs(5))
        .await
        .expect("ok")
        .expect("free");
    assert!(
        locks
            .try_acquire("job", Duration::from_secs(5))
            .await
            .expect("ok")
            .is_none()
    );
    let stranger = flash_sale_domain::gateway::LockLease {
        name: "job".into(),
        token: "not-mine".into(),
    };
    locks.release(&stranger).await.expect("ok");
    assert!(
        locks
            .try_acquire("job", Duration::from_secs(5))
            .await
            .expect("ok")
            .is_none(),
        "not released by a stranger"
    );
    assert!(
        locks
            .renew(&lease, Duration::from_secs(5))
            .await
            .expect("ok")
    );
    assert!(
        !locks
            .renew(&stranger, Duration::from_secs(5))
            .await
            .expect("ok")
    );
    locks.release(&lease).await.expect("ok");
    assert!(
        !locks
            .renew(&lease, Duration::from_secs(5))
            .await
            .expect("ok")
    );
    let short = locks
        .try_acquire("job", Duration::from_millis(50))
        .await
        .expect("ok")
        .expect("free again");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(
        locks
            .try_acquire("job", Duration::from_secs(5))
            .await
            .expect("ok")
            .is_some(),
        "expired"
    );
    locks
        .release(&short)
        .await
        .expect("a stale lease releases nothing");
    assert!(
        locks
            .try_acquire("job", Duration::from_secs(5))
            .await
            .expect("ok")
            .is_none(),
        "the new owner keeps it"
    );
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn units_come_from_several_buckets_and_each_gets_its_own_back() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let gina = user(&format!("gina{i}"));
        ledger
            .load(P, &buckets(&[1, 0, 1, 1]), &[], &[])
            .await
            .expect("load");
        let token = format!("m-{i}");
        let allocation = reserved(
            ledger
                .reserve(request(&gina, 2, 5, &token))
                .await
                .expect("reserve"),
        );
        assert_eq!((allocation.quantity(), allocation.parts().len()), (2, 2));
        assert_eq!(totals(ledger).await, (1, 2));
        assert_eq!(
            reserved(
                ledger
                    .reserve(request(&gina, 2, 5, &token))
                    .await
                    .expect("replay")
            ),
            allocation,
            "a retried call answers the same parts"
        );
        let hank = user(&format!("hank{i}"));
        assert_eq!(
            ledger
                .reserve(request(&hank, 2, 5, &format!("m2-{i}")))
                .await
                .expect("reserve"),
            Reservation::SoldOut { left: 1 },
            "one unit is too few for two; nothing is taken"
        );
        assert_eq!(totals(ledger).await, (1, 2));
        ledger
            .settle(P, &token, &allocation, Settlement::Released)
            .await
            .expect("settle");
        let view = ledger.view(P).await.expect("view").expect("loaded");
        assert_eq!(view.available, [1, 0, 1, 1], "each bucket got its own back");
        assert_eq!(view.in_flight, [0, 0, 0, 0]);
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn a_settlement_finds_a_hold_wherever_a_reload_put_it() {
    let f = Fixture::new().await;
    for (i, ledger) in f.ledgers().iter().enumerate() {
        let ivy = user(&format!("ivy{i}"));
        // A queued placement, moved from bucket 5 to bucket 1 by a re-arrangement.
        let moved = Allocation::from_parts(vec![BucketPart {
            bucket_no: 1,
            units: 2,
        }])
        .expect("valid");
        let queued = InFlight {
            token: format!("q-{i}"),
            user_id: ivy.clone(),
            allocation: moved,
        };
        ledger
            .load(P, &buckets(&[4, 4]), &[(ivy.clone(), 2)], &[queued])
            .await
            .expect("load");
        // The consumer still believes in bucket 0: the record decides.
        ledger
            .settle(
                P,
                &format!("q-{i}"),
                &Allocation::single(0, 2),
                Settlement::Committed,
            )
            .await
            .expect("settle");
        let view = ledger.view(P).await.expect("view").expect("loaded");
        assert_eq!((view.available, view.in_flight), (vec![4, 2], vec![0, 0]));
        assert!(view.holds.is_empty());
    }
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn cluster_bucket_scripts_retried_by_the_client_change_nothing_twice() {
    let f = Fixture::new().await;
    let url = std::env::var("FLASH_SALE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned());
    let mut conn = redis::Client::open(url)
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let key = format!("{{{}:p{}:b0}}", f.redis.prefix(), P.0);
    let _: i64 = redis::cmd("HSET")
        .arg(&key)
        .arg("avail")
        .arg(5)
        .arg("inflight")
        .arg(0)
        .query_async(&mut conn)
        .await
        .expect("hset");
    let counters = |conn: &mut redis::aio::MultiplexedConnection| {
        let key = key.clone();
        let mut conn = conn.clone();
        async move {
            let (avail, inflight): (i64, i64) = redis::cmd("HMGET")
                .arg(&key)
                .arg("avail")
                .arg("inflight")
                .query_async(&mut conn)
                .await
                .expect("hmget");
            (avail, inflight)
        }
    };
    let take = redis::Script::new(include_str!("../src/redis/lua/bucket_take.lua"));
    for _ in 0..2 {
        let answer: Vec<i64> = take
            .key(&key)
            .arg("tok")
            .arg(2)
            .arg("1")
            .invoke_async(&mut conn)
            .await
            .expect("take");
        assert_eq!(answer[..2], [1, 2], "the same units, whatever the retries");
    }
    assert_eq!(counters(&mut conn).await, (3, 2), "taken once");
    let adjust = redis::Script::new(include_str!("../src/redis/lua/bucket_adjust.lua"));
    let answers: Vec<i64> = [
        adjust
            .key(&key)
            .arg("ret")
            .arg(4)
            .invoke_async(&mut conn)
            .await
            .expect("adjust"),
        adjust
            .key(&key)
            .arg("ret")
            .arg(4)
            .invoke_async(&mut conn)
            .await
            .expect("adjust"),
    ]
    .into();
    assert_eq!(answers, [1, 2], "applied, then recognised");
    assert_eq!(counters(&mut conn).await, (7, 2), "returned once");
    let settle = redis::Script::new(include_str!("../src/redis/lua/bucket_settle.lua"));
    let mut moved = Vec::new();
    for _ in 0..2 {
        let units: i64 = settle
            .key(&key)
            .arg("tok")
            .arg("release")
            .invoke_async(&mut conn)
            .await
            .expect("settle");
        moved.push(units);
    }
    assert_eq!(moved, [2, 0], "settled once");
    assert_eq!(counters(&mut conn).await, (9, 0));
    f.cleanup().await;
}
