//! Placements recorded by the Redis reservation script, against a real Redis
//! (`FLASH_SALE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/1`, under a key prefix
//! of its own) and a throw-away SQLite database: one step records the placement with
//! its hold, its row is written once it resolves (or when a re-lay asks), and every
//! key of it goes then.

use std::collections::HashSet;

use chrono::Utc;
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{
    HoldKind, PlacementGateway, Reservation, ReserveRequest, StockLedger,
};
use flash_sale_domain::order::{IdempotencyKey, OrderRequest};
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId, PlacementStatus};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::StockBucket;
use flash_sale_infrastructure::db::{Database, PoolSettings, SeaOrmPlacementGateway};
use flash_sale_infrastructure::redis::{Redis, RedisPlacements, RedisStockLedger};

const P: ProductId = ProductId(9);

fn redis_url() -> String {
    std::env::var("FLASH_SALE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/1".to_owned())
}

struct Fixture {
    redis: Redis,
    ledger: RedisStockLedger,
    rows: SeaOrmPlacementGateway,
    placements: RedisPlacements,
    file: std::path::PathBuf,
}

impl Fixture {
    async fn new(stock: i64) -> Self {
        let url = redis_url();
        let prefix = format!("fsp{}", uuid::Uuid::now_v7().simple());
        let redis = Redis::connect(&url, &prefix)
            .await
            .expect("Redis must be running");
        let file = std::env::temp_dir().join(format!("{prefix}.sqlite"));
        let db = Database::connect(
            &format!("sqlite://{}?mode=rwc", file.display()),
            &PoolSettings::default(),
        )
        .await
        .expect("sqlite");
        db.migrate().await.expect("migrate");
        let ledger = RedisStockLedger::new(redis.clone());
        let bucket = StockBucket {
            product_id: P,
            bucket_no: 0,
            total: stock,
            available: stock,
        };
        ledger.load(P, &[bucket], &[], &[]).await.expect("load");
        let rows = SeaOrmPlacementGateway::new(db);
        Self {
            placements: RedisPlacements::new(redis.clone(), rows.clone()),
            redis,
            ledger,
            rows,
            file,
        }
    }

    /// Reserves `quantity` for `user` under a new placement recorded with the hold;
    /// the placement when reserved.
    async fn accept(&self, user: &str, quantity: u32, key: Option<&str>) -> Option<Placement> {
        let user = UserId::parse(user).expect("user");
        let mut placement = Placement::queue(NewPlacement {
            id: PlacementId::generate(),
            user_id: user.clone(),
            event_id: EventId(1),
            request: OrderRequest {
                product_id: P,
                quantity,
            },
            allocation: Allocation::single(0, quantity),
            unit_price: 100,
            idempotency_key: key.map(|k| IdempotencyKey::parse(k).expect("key")),
            now: Utc::now(),
        })
        .expect("placement");
        let reservation = self
            .ledger
            .reserve(ReserveRequest {
                product_id: P,
                user_id: &user,
                quantity,
                limit: 2,
                token: placement.id.as_str(),
                kind: HoldKind::Placement,
                placement: Some(&placement),
            })
            .await
            .expect("reserve");
        match reservation {
            Reservation::Reserved { allocation, .. } => {
                placement.allocation = allocation;
                Some(placement)
            }
            _ => None,
        }
    }

    /// How many keys of recorded placements are left (records, key indexes, queue).
    async fn recorded_keys(&self) -> usize {
        let mut conn = redis::Client::open(redis_url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:pl*", self.redis.prefix()))
            .query_async(&mut conn)
            .await
            .expect("keys");
        keys.len()
    }

    async fn cleanup(self) {
        self.redis.delete_prefix().await.expect("cleanup");
        let _ = std::fs::remove_file(&self.file);
    }
}

fn later() -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(1)
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn a_placement_is_recorded_with_its_hold_and_read_back_without_a_row() {
    let f = Fixture::new(3).await;
    let first = f.accept("alice", 2, Some("k1")).await.expect("reserved");
    let found = f.placements.find(&first.id).await.expect("find");
    assert_eq!(found.as_ref(), Some(&first), "read back as accepted");
    let by_key = f
        .placements
        .find_by_idempotency_key(&first.user_id, first.idempotency_key.as_ref().expect("key"))
        .await
        .expect("by key");
    assert_eq!(by_key.map(|p| p.id), Some(first.id.clone()));
    assert!(
        f.rows.find(&first.id).await.expect("rows").is_none(),
        "accepting wrote no database row"
    );
    assert_eq!(
        f.placements.queued(later(), 10).await.expect("queued"),
        vec![first.clone()],
        "the sweeper sees it"
    );
    // Refused (over the limit, then sold out): nothing is recorded.
    assert!(f.accept("alice", 1, Some("k2")).await.is_none());
    assert!(f.accept("bob", 2, None).await.is_none());
    assert_eq!(
        f.placements
            .queued(later(), 10)
            .await
            .expect("queued")
            .len(),
        1
    );
    assert_eq!(f.recorded_keys().await, 3, "record, queue, key index");
    f.cleanup().await;
}

#[tokio::test]
#[ignore = "needs Redis on 127.0.0.1:6379; run scripts/test-all.sh"]
async fn a_recorded_placement_gets_one_row_whoever_resolves_it() {
    let f = Fixture::new(10).await;
    let now = Utc::now();

    // Failed by the sweeper: a failed row that keeps the key, and its keys go.
    let failed = f.accept("carol", 1, Some("k1")).await.expect("reserved");
    assert!(
        f.placements
            .fail(&failed.id, "UNAVAILABLE", "late", now)
            .await
            .expect("fail")
    );
    assert!(
        !f.placements
            .fail(&failed.id, "UNAVAILABLE", "late", now)
            .await
            .expect("fail"),
        "once"
    );
    let row = f
        .rows
        .find(&failed.id)
        .await
        .expect("row")
        .expect("written");
    assert!(
        matches!(row.status, PlacementStatus::Failed { .. }),
        "{row:?}"
    );
    assert_eq!(row.idempotency_key, failed.idempotency_key);

    // Its publish failed: a failed row without the key (a retry may use it again).
    let unpublished = f.accept("dave", 1, Some("k1")).await.expect("reserved");
    assert!(f.placements.delete(&unpublished.id).await.expect("delete"));
    let row = f
        .rows
        .find(&unpublished.id)
        .await
        .expect("row")
        .expect("written");
    assert_eq!((row.status.as_str(), row.idempotency_key), ("failed", None));
    assert_eq!(
        f.placements
            .find_by_idempotency_key(
                &unpublished.user_id,
                unpublished.idempotency_key.as_ref().expect("key")
            )
            .await
            .expect("by key"),
        None
    );

    // A re-lay writes the queued ones as rows, once; they stay queued.
    let relaid = f.accept("erin", 1, None).await.expect("reserved");
    let ids = vec![relaid.id.as_str().to_owned()];
    for _ in 0..2 {
        let written = f.placements.write_rows(&ids).await.expect("write rows");
        assert_eq!(written, ids.iter().cloned().collect::<HashSet<_>>());
    }
    let row = f
        .rows
        .find(&relaid.id)
        .await
        .expect("row")
        .expect("written");
    assert_eq!(
        (row.status, row.allocation),
        (PlacementStatus::Queued, relaid.allocation.clone())
    );
    let queued = f.placements.queued(later(), 10).await.expect("queued");
    assert_eq!(
        queued.iter().map(|p| &p.id).collect::<Vec<_>>(),
        vec![&relaid.id],
        "one placement, though it is both a row and a record"
    );
    assert!(
        f.placements
            .fail(&relaid.id, "UNAVAILABLE", "late", now)
            .await
            .expect("fail")
    );
    assert_eq!(
        f.rows
            .find(&relaid.id)
            .await
            .expect("row")
            .expect("row")
            .status
            .as_str(),
        "failed"
    );

    assert!(
        f.placements
            .queued(later(), 10)
            .await
            .expect("queued")
            .is_empty()
    );
    assert_eq!(f.recorded_keys().await, 0, "nothing recorded is left");
    f.cleanup().await;
}
