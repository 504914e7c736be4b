//! The ground truth of a product, read straight from its rows, and the invariants of
//! DESIGN §3 checked on it.

use sea_orm::ConnectionTrait;

use crate::backends::TestDb;

/// Everything stored about one product, read straight from its rows: the ground
/// truth the invariants of DESIGN §3 are checked against.
#[derive(Debug, Clone)]
pub struct DbSnapshot {
    /// `products.stock_total`.
    pub stock_total: i64,
    /// `(bucket_no, total, available)`.
    pub buckets: Vec<(i64, i64, i64)>,
    /// Every order of the product.
    pub orders: Vec<OrderRow>,
    /// `(bucket_no, delta, reason)` of every ledger row.
    pub ledger: Vec<(i64, i64, String)>,
    /// `(user_id, used)` of every purchase-quota row.
    pub quotas: Vec<(String, i64)>,
}

/// One order row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Order id.
    pub id: String,
    /// Buyer.
    pub user_id: String,
    /// Units.
    pub quantity: i64,
    /// Status.
    pub status: String,
    /// The (main) bucket the units came from.
    pub bucket_no: i64,
    /// Every bucket the units came from, with its units (`bucket_split`, or the main
    /// bucket with the whole quantity).
    pub parts: Vec<(i64, i64)>,
    /// The buyer's idempotency key.
    pub idempotency_key: Option<String>,
}

impl OrderRow {
    /// Whether it still holds its units.
    pub fn is_live(&self) -> bool {
        self.status == "pending_payment" || self.status == "paid"
    }

    /// Units it took from `bucket`.
    pub fn units_in(&self, bucket: i64) -> i64 {
        self.parts
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, u)| *u)
            .sum()
    }
}

/// The parts of an order row: `bucket_split` (`3:1,5:1`) when set, else the whole
/// quantity from `bucket_no`.
fn order_parts(bucket_no: i64, quantity: i64, split: Option<&str>) -> Vec<(i64, i64)> {
    match split {
        Some(text) => text
            .split(',')
            .map(|part| {
                let (b, u) = part.split_once(':').expect("b:u");
                (b.parse().expect("bucket"), u.parse().expect("units"))
            })
            .collect(),
        None => vec![(bucket_no, quantity)],
    }
}

impl DbSnapshot {
    /// Σ quantity of live orders.
    pub fn held(&self) -> i64 {
        self.orders
            .iter()
            .filter(|o| o.is_live())
            .map(|o| o.quantity)
            .sum()
    }

    /// Σ available of the bucket rows.
    pub fn db_available(&self) -> i64 {
        self.buckets.iter().map(|b| b.2).sum()
    }

    /// Σ delta of the ledger rows.
    pub fn ledger_sum(&self) -> i64 {
        self.ledger.iter().map(|l| l.1).sum()
    }

    /// Units each buyer holds in live orders.
    pub fn held_by_user(&self) -> std::collections::HashMap<String, i64> {
        let mut held = std::collections::HashMap::new();
        for order in self.orders.iter().filter(|o| o.is_live()) {
            *held.entry(order.user_id.clone()).or_insert(0) += order.quantity;
        }
        held
    }

    /// Checks DESIGN §3 on the rows: no oversell, conservation, ledger truth (for the
    /// product and per bucket), quota rows equal to live holdings, no buyer over
    /// `limit`, no two orders of one buyer with one idempotency key.
    #[track_caller]
    pub fn assert_invariants(&self, limit: i64) {
        assert!(
            self.held() <= self.stock_total,
            "oversold: {} > {}",
            self.held(),
            self.stock_total
        );
        assert_eq!(
            self.db_available() + self.held(),
            self.stock_total,
            "conservation"
        );
        assert_eq!(
            self.ledger_sum(),
            self.db_available(),
            "Σ ledger = available"
        );
        for &(bucket, _, available) in &self.buckets {
            let sum: i64 = self
                .ledger
                .iter()
                .filter(|l| l.0 == bucket)
                .map(|l| l.1)
                .sum();
            assert_eq!(
                sum, available,
                "Σ ledger of bucket {bucket} = its available"
            );
            let held: i64 = self
                .orders
                .iter()
                .filter(|o| o.is_live())
                .map(|o| o.units_in(bucket))
                .sum();
            let total = self
                .buckets
                .iter()
                .find(|b| b.0 == bucket)
                .map_or(0, |b| b.1);
            assert_eq!(
                available + held,
                total,
                "bucket {bucket}: available + held = total"
            );
        }
        let held = self.held_by_user();
        for (user, units) in &held {
            assert!(*units <= limit, "{user} holds {units} > {limit}");
        }
        for (user, used) in &self.quotas {
            assert_eq!(
                *used,
                held.get(user).copied().unwrap_or(0),
                "quota row of {user}"
            );
        }
        let mut keys = std::collections::HashSet::new();
        for order in &self.orders {
            if let Some(key) = &order.idempotency_key {
                assert!(
                    keys.insert((order.user_id.clone(), key.clone())),
                    "two orders for one key"
                );
            }
        }
    }
}

impl TestDb {
    /// The product's rows, read from the database.
    pub async fn snapshot(&self, product_id: i64) -> DbSnapshot {
        let conn = self.connect().await.expect("connects");
        let backend = conn.get_database_backend();
        let rows = |sql: String| {
            let conn = &conn;
            async move {
                conn.query_all_raw(sea_orm::Statement::from_string(backend, sql))
                    .await
                    .expect("query")
            }
        };
        let int = |row: &sea_orm::QueryResult, col: &str| -> i64 {
            row.try_get::<i64>("", col)
                .or_else(|_| row.try_get::<i32>("", col).map(i64::from))
                .expect("integer column")
        };
        let stock_total = rows(format!(
            "SELECT stock_total FROM products WHERE id = {product_id}"
        ))
        .await
        .first()
        .map(|r| int(r, "stock_total"))
        .expect("product row");
        let buckets = rows(format!(
            "SELECT bucket_no, total, available FROM stock_buckets WHERE product_id = {product_id} ORDER BY bucket_no"
        ))
        .await
        .iter()
        .map(|r| (int(r, "bucket_no"), int(r, "total"), int(r, "available")))
        .collect();
        let orders = rows(format!(
            "SELECT id, user_id, quantity, status, bucket_no, bucket_split, idempotency_key FROM orders WHERE product_id = {product_id}"
        ))
        .await
        .iter()
        .map(|r| {
            let split: Option<String> = r.try_get("", "bucket_split").expect("split");
            OrderRow {
                id: r.try_get("", "id").expect("id"),
                user_id: r.try_get("", "user_id").expect("user"),
                quantity: int(r, "quantity"),
                status: r.try_get("", "status").expect("status"),
                bucket_no: int(r, "bucket_no"),
                parts: order_parts(int(r, "bucket_no"), int(r, "quantity"), split.as_deref()),
                idempotency_key: r.try_get("", "idempotency_key").expect("key"),
            }
        })
        .collect();
        let ledger = rows(format!(
            "SELECT bucket_no, delta, reason FROM inventory_ledger WHERE product_id = {product_id} ORDER BY id"
        ))
        .await
        .iter()
        .map(|r| (int(r, "bucket_no"), int(r, "delta"), r.try_get("", "reason").expect("reason")))
        .collect();
        let quotas = rows(format!(
            "SELECT user_id, used FROM purchase_quotas WHERE product_id = {product_id}"
        ))
        .await
        .iter()
        .map(|r| (r.try_get("", "user_id").expect("user"), int(r, "used")))
        .collect();
        conn.close().await.expect("closes");
        DbSnapshot {
            stock_total,
            buckets,
            orders,
            ledger,
            quotas,
        }
    }
}
