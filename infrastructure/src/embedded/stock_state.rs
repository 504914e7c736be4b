//! One product's stock in process memory: counters per bucket, quota and hold shards,
//! and taking units the way the ledger promises (one bucket when it can, else several).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use flash_sale_domain::UserId;
use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::gateway::{HoldKind, InFlight};
use flash_sale_domain::stock::{StockBucket, probe_order};

const SHARDS: usize = 64;

/// An unsettled reservation.
#[derive(Debug)]
pub(super) struct HoldRecord {
    pub(super) kind: HoldKind,
    pub(super) user: UserId,
    pub(super) allocation: Allocation,
    pub(super) at: Instant,
}

/// A product's counters, quotas, holds and returns in progress.
#[derive(Debug)]
pub(super) struct StockState {
    pub(super) available: Vec<AtomicI64>,
    pub(super) in_flight: Vec<AtomicI64>,
    pub(super) quotas: Vec<Mutex<HashMap<UserId, u32>>>,
    pub(super) holds: Vec<Mutex<HashMap<String, HoldRecord>>>,
    pub(super) returns: Mutex<HashMap<String, Instant>>,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn shard(hash: u64) -> usize {
    usize::try_from(hash % SHARDS as u64).unwrap_or(0)
}

pub(super) fn token_shard(token: &str) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    shard(BuildHasherDefault::<DefaultHasher>::default().hash_one(token))
}

pub(super) fn shards<T: Default>() -> Vec<Mutex<T>> {
    (0..SHARDS).map(|_| Mutex::new(T::default())).collect()
}

/// Takes up to `want` units from `counter` (all of them when `all`); how many.
pub(super) fn take_up_to(counter: &AtomicI64, want: i64, all: bool) -> i64 {
    let mut taken = 0;
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
        taken = if all {
            if current >= want { want } else { 0 }
        } else {
            current.clamp(0, want)
        };
        (taken > 0).then_some(current - taken)
    });
    taken
}

impl StockState {
    pub(super) fn new(
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Self {
        let count = buckets
            .iter()
            .map(|b| b.bucket_no as usize + 1)
            .max()
            .unwrap_or(1);
        let mut available = vec![0_i64; count];
        for bucket in buckets {
            available[bucket.bucket_no as usize] = bucket.available;
        }
        let mut held = vec![0_i64; count];
        let holds: Vec<Mutex<HashMap<String, HoldRecord>>> = shards();
        for f in in_flight {
            for part in f.allocation.parts() {
                if let Some(h) = held.get_mut(part.bucket_no as usize) {
                    *h += i64::from(part.units);
                }
            }
            lock(&holds[token_shard(&f.token)]).insert(
                f.token.clone(),
                HoldRecord {
                    kind: HoldKind::Placement,
                    user: f.user_id.clone(),
                    allocation: f.allocation.clone(),
                    at: Instant::now(),
                },
            );
        }
        let quota_shards: Vec<Mutex<HashMap<UserId, u32>>> = shards();
        for (user, used) in quotas {
            lock(&quota_shards[shard(user.stable_hash())]).insert(user.clone(), *used);
        }
        Self {
            available: available
                .iter()
                .zip(&held)
                .map(|(a, h)| AtomicI64::new(a - h))
                .collect(),
            in_flight: held.into_iter().map(AtomicI64::new).collect(),
            quotas: quota_shards,
            holds,
            returns: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn left(&self) -> i64 {
        self.available
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .sum()
    }

    pub(super) fn quota(&self, user: &UserId) -> std::sync::MutexGuard<'_, HashMap<UserId, u32>> {
        lock(&self.quotas[shard(user.stable_hash())])
    }

    pub(super) fn give_back_quota(&self, user: &UserId, units: u32) {
        let mut quotas = self.quota(user);
        if let Some(used) = quotas.get_mut(user) {
            *used = used.saturating_sub(units);
            if *used == 0 {
                quotas.remove(user);
            }
        }
    }

    pub(super) fn add(counters: &[AtomicI64], bucket_no: u32, units: i64) {
        if let Some(counter) = counters.get(bucket_no as usize) {
            counter.fetch_add(units, Ordering::AcqRel);
        }
    }

    /// Takes `units` for `user`: all from the first bucket in probe order that holds
    /// them, else from several; `None` (nothing taken) when the product has too few.
    pub(super) fn take(&self, user: &UserId, units: u32) -> Option<Allocation> {
        let count = u32::try_from(self.available.len()).unwrap_or(1);
        let want = i64::from(units);
        for bucket_no in probe_order(user, count) {
            if take_up_to(&self.available[bucket_no as usize], want, true) == want {
                return Some(Allocation::single(bucket_no, units));
            }
        }
        let mut parts = Vec::new();
        let mut left = want;
        for bucket_no in probe_order(user, count) {
            let taken = take_up_to(&self.available[bucket_no as usize], left, false);
            if taken > 0 {
                parts.push(BucketPart {
                    bucket_no,
                    units: u32::try_from(taken).unwrap_or(0),
                });
                left -= taken;
            }
            if left == 0 {
                return Allocation::from_parts(parts);
            }
        }
        for part in parts {
            Self::add(&self.available, part.bucket_no, i64::from(part.units));
        }
        None
    }
}
