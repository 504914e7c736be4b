//! [`StockLedger`] in process memory: the hot path of the embedded mode.
//!
//! Per product: one atomic counter of available units per bucket (decremented with a
//! compare-and-swap, never below zero), one atomic in-flight counter per bucket, and
//! the buyers' used quotas in 64 mutex-guarded shards. A reservation holds the buyer's
//! shard lock while it checks the quota and swaps the stock, so stock and quota move
//! together; different buyers never wait for each other unless they share a shard.
//!
//! Reservations are remembered by token (in 64 shards) so that a settlement applies
//! once: a duplicate, or one for a reservation this ledger never held (made before a
//! restart and not handed back by the loader), changes nothing. Returns need no
//! token: in one process each is finished exactly once by the code that began it.
//!
//! A per-product read-write lock is taken for reading by every operation and for
//! writing only to replace the state (loading, reconcile), which happens while the
//! product is suspended and idle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{
    GatewayError, InFlight, LedgerView, Reservation, ReserveRequest, Settlement, StockLedger,
};
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket, probe_order};

const QUOTA_SHARDS: usize = 64;

/// Stock and quotas of every loaded product, in this process.
#[derive(Debug, Default)]
pub struct EmbeddedStockLedger {
    products: RwLock<HashMap<ProductId, Arc<ProductStock>>>,
}

#[derive(Debug)]
struct ProductStock {
    state: RwLock<StockState>,
    /// Tokens of the reservations not yet settled.
    tokens: Vec<Mutex<HashSet<String>>>,
    suspended: AtomicBool,
    /// Reservations not yet settled plus returns not yet finished.
    pending: AtomicI64,
}

#[derive(Debug)]
struct StockState {
    available: Vec<AtomicI64>,
    in_flight: Vec<AtomicI64>,
    quotas: Vec<Mutex<HashMap<UserId, u32>>>,
}

impl StockState {
    fn new(buckets: &[StockBucket], in_flight: &[i64], quotas: &[(UserId, u32)]) -> Self {
        let count = buckets
            .iter()
            .map(|b| b.bucket_no as usize + 1)
            .max()
            .unwrap_or(1);
        let mut available = vec![0_i64; count];
        for bucket in buckets {
            available[bucket.bucket_no as usize] = bucket.available;
        }
        let in_flight: Vec<i64> = (0..count)
            .map(|b| in_flight.get(b).copied().unwrap_or(0))
            .collect();
        let shards: Vec<Mutex<HashMap<UserId, u32>>> = (0..QUOTA_SHARDS)
            .map(|_| Mutex::new(HashMap::new()))
            .collect();
        for (user, used) in quotas {
            lock(&shards[shard_of(user)]).insert(user.clone(), *used);
        }
        Self {
            available: available
                .iter()
                .zip(&in_flight)
                .map(|(a, f)| AtomicI64::new(a - f))
                .collect(),
            in_flight: in_flight.into_iter().map(AtomicI64::new).collect(),
            quotas: shards,
        }
    }

    fn left(&self) -> i64 {
        self.available
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .sum()
    }

    fn quota(&self, user: &UserId) -> std::sync::MutexGuard<'_, HashMap<UserId, u32>> {
        lock(&self.quotas[shard_of(user)])
    }

    fn give_back_quota(&self, user: &UserId, units: u32) {
        let mut quotas = self.quota(user);
        if let Some(used) = quotas.get_mut(user) {
            *used = used.saturating_sub(units);
            if *used == 0 {
                quotas.remove(user);
            }
        }
    }
}

fn shard_of(user: &UserId) -> usize {
    usize::try_from(user.stable_hash() % QUOTA_SHARDS as u64).unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes `units` from `counter` only if it holds that many.
fn try_take(counter: &AtomicI64, units: i64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
            (current >= units).then_some(current - units)
        })
        .is_ok()
}

impl ProductStock {
    fn new(state: StockState, held: &[InFlight]) -> Self {
        let tokens: Vec<Mutex<HashSet<String>>> = (0..QUOTA_SHARDS)
            .map(|_| Mutex::new(HashSet::new()))
            .collect();
        for f in held {
            lock(&tokens[token_shard(&f.token)]).insert(f.token.clone());
        }
        Self {
            state: RwLock::new(state),
            tokens,
            suspended: AtomicBool::new(false),
            pending: AtomicI64::new(i64::try_from(held.len()).unwrap_or(i64::MAX)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, StockState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn tokens(&self, token: &str) -> std::sync::MutexGuard<'_, HashSet<String>> {
        lock(&self.tokens[token_shard(token)])
    }
}

fn token_shard(token: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(token);
    usize::try_from(hash % QUOTA_SHARDS as u64).unwrap_or(0)
}

impl EmbeddedStockLedger {
    /// An empty ledger; products are loaded on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn product(&self, id: ProductId) -> Option<Arc<ProductStock>> {
        self.products
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn suspended() -> GatewayError {
        GatewayError::rejected(ProductError::Suspended)
    }
}

#[async_trait]
impl StockLedger for EmbeddedStockLedger {
    async fn reserve(&self, request: ReserveRequest<'_>) -> Result<Reservation, GatewayError> {
        let Some(stock) = self.product(request.product_id) else {
            return Ok(Reservation::NotLoaded);
        };
        let state = stock.read();
        if stock.suspended.load(Ordering::Acquire) {
            return Ok(Reservation::Suspended);
        }
        let mut quotas = state.quota(request.user_id);
        let mut tokens = stock.tokens(request.token);
        if tokens.contains(request.token) {
            return Err(GatewayError::Internal(format!(
                "reservation token {} is in use",
                request.token
            )));
        }
        let used = quotas.get(request.user_id).copied().unwrap_or(0);
        if used + request.quantity > request.limit {
            return Ok(Reservation::LimitExceeded { used });
        }
        let units = i64::from(request.quantity);
        let count = u32::try_from(state.available.len()).unwrap_or(1);
        for bucket_no in probe_order(request.user_id, count) {
            let bucket = bucket_no as usize;
            if try_take(&state.available[bucket], units) {
                stock.pending.fetch_add(1, Ordering::AcqRel);
                state.in_flight[bucket].fetch_add(units, Ordering::AcqRel);
                quotas.insert(request.user_id.clone(), used + request.quantity);
                tokens.insert(request.token.to_owned());
                return Ok(Reservation::Reserved {
                    bucket_no,
                    left: state.left(),
                });
            }
        }
        Ok(Reservation::SoldOut { left: state.left() })
    }

    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        bucket_no: u32,
        quantity: u32,
        settlement: Settlement<'_>,
    ) -> Result<(), GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(());
        };
        let state = stock.read();
        if !stock.tokens(token).remove(token) {
            return Ok(());
        }
        let units = i64::from(quantity);
        if let Some(in_flight) = state.in_flight.get(bucket_no as usize) {
            in_flight.fetch_sub(units, Ordering::AcqRel);
        }
        if let Settlement::Released(user) = settlement {
            if let Some(available) = state.available.get(bucket_no as usize) {
                available.fetch_add(units, Ordering::AcqRel);
            }
            state.give_back_quota(user, quantity);
        }
        stock.pending.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }

    async fn begin_return(
        &self,
        product_id: ProductId,
        _token: &str,
    ) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(false);
        };
        let _state = stock.read();
        if stock.suspended.load(Ordering::Acquire) {
            return Err(Self::suspended());
        }
        stock.pending.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    async fn finish_return(
        &self,
        product_id: ProductId,
        _token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(());
        };
        let state = stock.read();
        for delta in deltas {
            if let Some(available) = state.available.get(delta.bucket_no as usize) {
                available.fetch_add(delta.delta, Ordering::AcqRel);
            }
        }
        if let Some((user, units)) = quota {
            state.give_back_quota(user, units);
        }
        stock.pending.fetch_sub(1, Ordering::AcqRel);
        Ok(())
    }

    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(false);
        };
        let state = stock.read();
        let mut taken: Vec<(usize, i64)> = Vec::with_capacity(deltas.len());
        for delta in deltas {
            let bucket = delta.bucket_no as usize;
            let units = -delta.delta;
            let ok = state
                .available
                .get(bucket)
                .is_some_and(|available| try_take(available, units));
            if !ok {
                for (bucket, units) in taken {
                    state.available[bucket].fetch_add(units, Ordering::AcqRel);
                }
                return Ok(false);
            }
            taken.push((bucket, units));
        }
        Ok(true)
    }

    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError> {
        let existing = self.product(product_id);
        match existing {
            Some(stock) => {
                let mut state = stock.state.write().unwrap_or_else(PoisonError::into_inner);
                let in_flight: Vec<i64> = state
                    .in_flight
                    .iter()
                    .map(|f| f.load(Ordering::Acquire))
                    .collect();
                *state = StockState::new(buckets, &in_flight, quotas);
            }
            // Reservations this process made before it restarted: held again.
            None => {
                let mut held = Vec::new();
                for f in in_flight {
                    let bucket = f.bucket_no as usize;
                    if held.len() <= bucket {
                        held.resize(bucket + 1, 0);
                    }
                    held[bucket] += i64::from(f.quantity);
                }
                let stock = Arc::new(ProductStock::new(
                    StockState::new(buckets, &held, quotas),
                    in_flight,
                ));
                self.products
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(product_id)
                    .or_insert(stock);
            }
        }
        Ok(())
    }

    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError> {
        Ok(self.product(product_id).is_some())
    }

    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError> {
        Ok(self.product(product_id).map(|stock| {
            let state = stock.read();
            LedgerView {
                available: state
                    .available
                    .iter()
                    .map(|a| a.load(Ordering::Acquire))
                    .collect(),
                in_flight: state
                    .in_flight
                    .iter()
                    .map(|f| f.load(Ordering::Acquire))
                    .collect(),
            }
        }))
    }

    async fn suspend(&self, product_id: ProductId, wait: Duration) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(true);
        };
        stock.suspended.store(true, Ordering::Release);
        let deadline = Instant::now() + wait;
        loop {
            {
                // Once we hold the write lock, every operation that saw "not suspended"
                // has registered itself in `pending`.
                let _state = stock.state.write().unwrap_or_else(PoisonError::into_inner);
                if stock.pending.load(Ordering::Acquire) == 0 {
                    return Ok(true);
                }
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn resume(&self, product_id: ProductId) -> Result<(), GatewayError> {
        if let Some(stock) = self.product(product_id) {
            stock.suspended.store(false, Ordering::Release);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("valid")
    }

    fn buckets(available: &[i64]) -> Vec<StockBucket> {
        available
            .iter()
            .zip(0..)
            .map(|(&available, bucket_no)| StockBucket {
                product_id: ProductId(1),
                bucket_no,
                total: available,
                available,
            })
            .collect()
    }

    fn named<'a>(
        user: &'a UserId,
        quantity: u32,
        limit: u32,
        token: &'a str,
    ) -> ReserveRequest<'a> {
        ReserveRequest {
            token,
            ..request(user, quantity, limit)
        }
    }

    fn request(user: &UserId, quantity: u32, limit: u32) -> ReserveRequest<'_> {
        static NEXT: AtomicI64 = AtomicI64::new(0);
        let token = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        ReserveRequest {
            product_id: ProductId(1),
            user_id: user,
            quantity,
            limit,
            token: Box::leak(token.into_boxed_str()),
        }
    }

    #[tokio::test]
    async fn a_product_must_be_loaded_before_it_sells() {
        let ledger = EmbeddedStockLedger::new();
        let alice = user("alice");
        assert_eq!(
            ledger.reserve(request(&alice, 1, 1)).await.ok(),
            Some(Reservation::NotLoaded)
        );
        ledger
            .load(ProductId(1), &buckets(&[3]), &[], &[])
            .await
            .expect("loads");
        assert!(matches!(
            ledger.reserve(request(&alice, 1, 1)).await,
            Ok(Reservation::Reserved {
                bucket_no: 0,
                left: 2
            })
        ));
    }

    #[tokio::test]
    async fn the_quota_is_checked_before_stock_is_taken() {
        let ledger = EmbeddedStockLedger::new();
        let alice = user("alice");
        ledger
            .load(ProductId(1), &buckets(&[10]), &[(alice.clone(), 2)], &[])
            .await
            .expect("loads");
        assert_eq!(
            ledger.reserve(request(&alice, 1, 2)).await.ok(),
            Some(Reservation::LimitExceeded { used: 2 })
        );
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!(view.available, [10], "a refused request burns no stock");
    }

    #[tokio::test]
    async fn a_rebuilt_ledger_holds_the_queued_placements_until_they_settle() {
        let ledger = EmbeddedStockLedger::new();
        let alice = user("alice");
        let queued = InFlight {
            token: "p1".into(),
            user_id: alice.clone(),
            bucket_no: 0,
            quantity: 2,
        };
        ledger
            .load(
                ProductId(1),
                &buckets(&[3]),
                &[(alice.clone(), 2)],
                &[queued],
            )
            .await
            .expect("loads");
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!((view.available, view.in_flight), (vec![1], vec![2]));
        assert!(
            !ledger
                .suspend(ProductId(1), Duration::from_millis(20))
                .await
                .expect("suspend"),
            "a held placement keeps the product busy"
        );
        ledger.resume(ProductId(1)).await.expect("resume");
        ledger
            .settle(ProductId(1), "p1", 0, 2, Settlement::Released(&alice))
            .await
            .expect("settles");
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!((view.available, view.in_flight), (vec![3], vec![0]));
        assert!(
            ledger
                .suspend(ProductId(1), Duration::from_millis(20))
                .await
                .expect("suspend")
        );
        ledger.resume(ProductId(1)).await.expect("resume");
        assert!(
            matches!(
                ledger.reserve(request(&alice, 2, 2)).await,
                Ok(Reservation::Reserved { .. })
            ),
            "the released placement gave the buyer's quota back"
        );
    }

    #[tokio::test]
    async fn an_empty_home_bucket_sends_the_buyer_to_another() {
        let ledger = EmbeddedStockLedger::new();
        ledger
            .load(ProductId(1), &buckets(&[0, 0, 0, 1]), &[], &[])
            .await
            .expect("loads");
        let bob = user("bob");
        assert!(matches!(
            ledger.reserve(request(&bob, 1, 5)).await,
            Ok(Reservation::Reserved {
                bucket_no: 3,
                left: 0
            })
        ));
        assert_eq!(
            ledger.reserve(request(&bob, 1, 5)).await.ok(),
            Some(Reservation::SoldOut { left: 0 })
        );
    }

    #[tokio::test]
    async fn settling_keeps_available_plus_in_flight_equal_to_what_the_database_holds() {
        let ledger = EmbeddedStockLedger::new();
        let (alice, bob) = (user("alice"), user("bob"));
        ledger
            .load(ProductId(1), &buckets(&[5]), &[], &[])
            .await
            .expect("loads");
        ledger
            .reserve(named(&alice, 2, 5, "ta"))
            .await
            .expect("reserves");
        ledger
            .reserve(named(&bob, 1, 5, "tb"))
            .await
            .expect("reserves");
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!((view.available[0], view.in_flight[0]), (2, 3));
        ledger
            .settle(ProductId(1), "ta", 0, 2, Settlement::Committed)
            .await
            .expect("settles");
        for _ in 0..2 {
            ledger
                .settle(ProductId(1), "tb", 0, 1, Settlement::Released(&bob))
                .await
                .expect("settles; the second time changes nothing");
        }
        ledger
            .settle(ProductId(1), "never-reserved", 0, 1, Settlement::Committed)
            .await
            .expect("changes nothing");
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!((view.available[0], view.in_flight[0]), (3, 0));
        assert!(
            matches!(
                ledger.reserve(request(&bob, 1, 1)).await,
                Ok(Reservation::Reserved { .. })
            ),
            "bob's quota came back"
        );
    }

    #[tokio::test]
    async fn many_threads_never_oversell_or_pass_a_limit() {
        let ledger = Arc::new(EmbeddedStockLedger::new());
        ledger
            .load(ProductId(1), &buckets(&[40, 40, 20]), &[], &[])
            .await
            .expect("loads");
        let mut tasks = Vec::new();
        for i in 0..400 {
            let ledger = ledger.clone();
            tasks.push(tokio::spawn(async move {
                let user = user(&format!("u{}", i % 150));
                ledger.reserve(request(&user, 1, 2)).await.expect("answers")
            }));
        }
        let mut reserved = 0;
        for task in tasks {
            if matches!(task.await.expect("joins"), Reservation::Reserved { .. }) {
                reserved += 1;
            }
        }
        assert_eq!(reserved, 100);
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!(view.available, [0, 0, 0]);
        assert_eq!(view.in_flight.iter().sum::<i64>(), 100);
    }

    #[tokio::test]
    async fn suspend_waits_for_pending_operations_and_blocks_new_ones() {
        let ledger = Arc::new(EmbeddedStockLedger::new());
        let alice = user("alice");
        ledger
            .load(ProductId(1), &buckets(&[5]), &[], &[])
            .await
            .expect("loads");
        ledger
            .reserve(named(&alice, 1, 5, "ts"))
            .await
            .expect("reserves");
        assert!(
            !ledger
                .suspend(ProductId(1), Duration::from_millis(20))
                .await
                .expect("suspends")
        );
        assert_eq!(
            ledger.reserve(request(&alice, 1, 5)).await.ok(),
            Some(Reservation::Suspended)
        );
        assert!(ledger.begin_return(ProductId(1), "r").await.is_err());
        ledger
            .settle(ProductId(1), "ts", 0, 1, Settlement::Committed)
            .await
            .expect("settles");
        assert!(
            ledger
                .suspend(ProductId(1), Duration::from_millis(20))
                .await
                .expect("suspends")
        );
        ledger
            .load(ProductId(1), &buckets(&[7]), &[(alice.clone(), 1)], &[])
            .await
            .expect("reloads");
        ledger.resume(ProductId(1)).await.expect("resumes");
        let view = ledger
            .view(ProductId(1))
            .await
            .expect("view")
            .expect("loaded");
        assert_eq!(view.available, [7]);
    }
}
