//! [`StockLedger`] in process memory: the hot path of the embedded mode.
//!
//! Per product: one atomic counter of available units per bucket (taken with a
//! compare-and-swap, never below zero), one atomic in-flight counter per bucket, the
//! buyers' used quotas in 64 mutex-guarded shards and the holds (unsettled
//! reservations, by token) in 64 more. A reservation holds the buyer's quota shard
//! while it checks the quota, takes the units and records its hold, so stock, quota
//! and hold move together; different buyers never wait for each other unless they
//! share a shard.
//!
//! A per-product read-write lock is taken for reading by every operation and for
//! writing only to replace the state (loading), to read a consistent view, or as the
//! barrier of a suspension:
//! once [`StockLedger::suspend`] has held it, every operation that saw the product
//! not suspended has recorded its hold or return, so [`StockLedger::view`] shows it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use super::stock_state::{HoldRecord, StockState, lock, take_up_to, token_shard};

use async_trait::async_trait;
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    GatewayError, Hold, InFlight, LedgerView, Reservation, ReserveRequest, ReturnInProgress,
    Settlement, StockLedger, Suspension,
};
use flash_sale_domain::product::{ProductError, ProductId};
use flash_sale_domain::stock::{BucketDelta, StockBucket};

/// Stock and quotas of every loaded product, in this process.
#[derive(Debug, Default)]
pub struct EmbeddedStockLedger {
    products: RwLock<HashMap<ProductId, Arc<ProductStock>>>,
}

#[derive(Debug)]
struct ProductStock {
    state: RwLock<StockState>,
    /// The suspension in force: its owner and when it ends by itself.
    suspension: Mutex<Option<(String, Instant)>>,
}

impl ProductStock {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, StockState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_suspended(&self) -> bool {
        lock(&self.suspension)
            .as_ref()
            .is_some_and(|(_, until)| Instant::now() < *until)
    }
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
}

#[async_trait]
impl StockLedger for EmbeddedStockLedger {
    /// In process, a placement is a database row from the start.
    fn records_placements(&self) -> bool {
        false
    }

    async fn reserve<'a>(&self, request: ReserveRequest<'a>) -> Result<Reservation, GatewayError> {
        let Some(stock) = self.product(request.product_id) else {
            return Ok(Reservation::NotLoaded);
        };
        let state = stock.read();
        if stock.is_suspended() {
            return Ok(Reservation::Suspended);
        }
        let mut quotas = state.quota(request.user_id);
        let mut holds = lock(&state.holds[token_shard(request.token)]);
        if let Some(earlier) = holds.get(request.token) {
            return Ok(Reservation::Reserved {
                allocation: earlier.allocation.clone(),
                left: -1,
            });
        }
        let used = quotas.get(request.user_id).copied().unwrap_or(0);
        if used + request.quantity > request.limit {
            return Ok(Reservation::LimitExceeded { used });
        }
        let Some(allocation) = state.take(request.user_id, request.quantity) else {
            return Ok(Reservation::SoldOut { left: state.left() });
        };
        for part in allocation.parts() {
            StockState::add(&state.in_flight, part.bucket_no, i64::from(part.units));
        }
        quotas.insert(request.user_id.clone(), used + request.quantity);
        holds.insert(
            request.token.to_owned(),
            HoldRecord {
                kind: request.kind,
                user: request.user_id.clone(),
                allocation: allocation.clone(),
                at: Instant::now(),
            },
        );
        Ok(Reservation::Reserved {
            allocation,
            left: state.left(),
        })
    }

    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        _allocation: &Allocation,
        settlement: Settlement,
    ) -> Result<(), GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(());
        };
        let state = stock.read();
        let Some(hold) = lock(&state.holds[token_shard(token)]).remove(token) else {
            return Ok(());
        };
        for part in hold.allocation.parts() {
            let units = i64::from(part.units);
            StockState::add(&state.in_flight, part.bucket_no, -units);
            if settlement == Settlement::Released {
                StockState::add(&state.available, part.bucket_no, units);
            }
        }
        if settlement == Settlement::Released {
            state.give_back_quota(&hold.user, hold.allocation.quantity());
        }
        Ok(())
    }

    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(false);
        };
        let state = stock.read();
        if stock.is_suspended() {
            return Err(GatewayError::rejected(ProductError::Suspended));
        }
        lock(&state.returns).insert(token.to_owned(), Instant::now());
        Ok(true)
    }

    async fn finish_return<'u>(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&'u UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(());
        };
        let state = stock.read();
        if lock(&state.returns).remove(token).is_none() {
            return Ok(());
        }
        for delta in deltas {
            StockState::add(&state.available, delta.bucket_no, delta.delta);
        }
        if let Some((user, units)) = quota {
            state.give_back_quota(user, units);
        }
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
        let mut taken: Vec<(u32, i64)> = Vec::with_capacity(deltas.len());
        for delta in deltas {
            let units = -delta.delta;
            let ok = state
                .available
                .get(delta.bucket_no as usize)
                .is_some_and(|available| take_up_to(available, units, true) == units);
            if !ok {
                for (bucket_no, units) in taken {
                    StockState::add(&state.available, bucket_no, units);
                }
                return Ok(false);
            }
            taken.push((delta.bucket_no, units));
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
        let fresh = StockState::new(buckets, quotas, in_flight);
        if let Some(stock) = self.product(product_id) {
            *stock.state.write().unwrap_or_else(PoisonError::into_inner) = fresh;
            return Ok(());
        }
        self.products
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(product_id)
            .or_insert_with(|| {
                Arc::new(ProductStock {
                    state: RwLock::new(fresh),
                    suspension: Mutex::new(None),
                })
            });
        Ok(())
    }

    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError> {
        Ok(self.product(product_id).is_some())
    }

    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(None);
        };
        // The write lock: no operation is half-way, so counters and holds agree.
        let state = stock.state.write().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let load = |counters: &[AtomicI64]| -> Vec<i64> {
            counters.iter().map(|c| c.load(Ordering::Acquire)).collect()
        };
        let mut holds = Vec::new();
        for shard in &state.holds {
            holds.extend(lock(shard).iter().map(|(token, h)| Hold {
                token: token.clone(),
                kind: h.kind,
                user_id: h.user.clone(),
                allocation: h.allocation.clone(),
                age: now.duration_since(h.at),
            }));
        }
        let returns = lock(&state.returns)
            .iter()
            .map(|(token, at)| ReturnInProgress {
                token: token.clone(),
                age: now.duration_since(*at),
            })
            .collect();
        Ok(Some(LedgerView {
            available: load(&state.available),
            in_flight: load(&state.in_flight),
            holds,
            returns,
            suspended: stock.is_suspended(),
        }))
    }

    async fn suspend(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(false);
        };
        {
            let mut current = lock(&stock.suspension);
            if let Some((owner, until)) = current.as_ref()
                && *owner != suspension.owner
                && Instant::now() < *until
            {
                return Ok(false);
            }
            *current = Some((suspension.owner.clone(), Instant::now() + suspension.ttl));
        }
        // The barrier: every operation that saw "not suspended" has recorded itself.
        drop(stock.state.write().unwrap_or_else(PoisonError::into_inner));
        Ok(true)
    }

    async fn renew(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        let Some(stock) = self.product(product_id) else {
            return Ok(false);
        };
        let mut current = lock(&stock.suspension);
        match current.as_mut() {
            Some((owner, until)) if *owner == suspension.owner => {
                *until = Instant::now() + suspension.ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn resume(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<(), GatewayError> {
        if let Some(stock) = self.product(product_id) {
            let mut current = lock(&stock.suspension);
            if current
                .as_ref()
                .is_some_and(|(owner, _)| *owner == suspension.owner)
            {
                *current = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "stock_ledger_tests.rs"]
mod tests;
