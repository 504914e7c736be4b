//! Stock buckets: how a product's units are split, where a buyer's units come from,
//! and how added or removed units are spread.

use crate::product::{ProductError, ProductId};
use crate::user::UserId;

/// One bucket of a product's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockBucket {
    /// The product.
    pub product_id: ProductId,
    /// Bucket number, from 0.
    pub bucket_no: u32,
    /// Units put in this bucket in all.
    pub total: i64,
    /// Units this bucket can still sell.
    pub available: i64,
}

/// Splits `total` units into `count` buckets; no bucket holds more than one unit over
/// another, the remainder going to the first buckets.
pub fn split_evenly(total: i64, count: u32) -> Vec<i64> {
    let count = i64::from(count.max(1));
    let base = total / count;
    let remainder = total % count;
    (0..count)
        .map(|i| base + i64::from(i < remainder))
        .collect()
}

/// A change of units in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketDelta {
    /// Bucket number.
    pub bucket_no: u32,
    /// Units in (positive) or out (negative).
    pub delta: i64,
}

/// Spreads `delta` added units over `buckets` so that the emptiest fill first and the
/// available units end as even as they can.
pub fn plan_addition(buckets: &[StockBucket], delta: i64) -> Vec<BucketDelta> {
    let mut available: Vec<(u32, i64, i64)> = buckets
        .iter()
        .map(|b| (b.bucket_no, b.available, 0))
        .collect();
    let mut left = delta;
    while left > 0 && !available.is_empty() {
        // Raise the lowest level up to the next level (or spread what is left evenly).
        available.sort_by_key(|&(no, level, _)| (level, no));
        let lowest = available[0].1;
        let tied = available.iter().take_while(|b| b.1 == lowest).count();
        let next = available.get(tied).map_or(i64::MAX, |b| b.1);
        let tied_units = i64::try_from(tied).unwrap_or(i64::MAX);
        let step = (next - lowest).min(left / tied_units).max(0);
        if step == 0 {
            // Fewer units than tied buckets: one each until they run out.
            for bucket in available.iter_mut().take(tied) {
                if left == 0 {
                    break;
                }
                bucket.1 += 1;
                bucket.2 += 1;
                left -= 1;
            }
        } else {
            for bucket in available.iter_mut().take(tied) {
                bucket.1 += step;
                bucket.2 += step;
            }
            left -= step * tied_units;
        }
    }
    collect_deltas(available)
}

/// Takes `units` unsold units out of `buckets`, from the fullest first, so the
/// available units end as even as they can.
pub fn plan_removal(buckets: &[StockBucket], units: i64) -> Result<Vec<BucketDelta>, ProductError> {
    let unsold: i64 = buckets.iter().map(|b| b.available).sum();
    if units > unsold {
        return Err(ProductError::NotEnoughUnsold {
            requested: units,
            unsold,
        });
    }
    let mut available: Vec<(u32, i64, i64)> = buckets
        .iter()
        .map(|b| (b.bucket_no, b.available, 0))
        .collect();
    let mut left = units;
    while left > 0 {
        available.sort_by_key(|&(no, level, _)| (std::cmp::Reverse(level), no));
        let highest = available[0].1;
        let tied = available.iter().take_while(|b| b.1 == highest).count();
        let next = available.get(tied).map_or(0, |b| b.1);
        let tied_units = i64::try_from(tied).unwrap_or(i64::MAX);
        let step = (highest - next).min(left / tied_units).max(0);
        if step == 0 {
            for bucket in available.iter_mut().take(tied) {
                if left == 0 {
                    break;
                }
                bucket.1 -= 1;
                bucket.2 -= 1;
                left -= 1;
            }
        } else {
            for bucket in available.iter_mut().take(tied) {
                bucket.1 -= step;
                bucket.2 -= step;
            }
            left -= step * tied_units;
        }
    }
    Ok(collect_deltas(available))
}

fn collect_deltas(buckets: Vec<(u32, i64, i64)>) -> Vec<BucketDelta> {
    let mut deltas: Vec<BucketDelta> = buckets
        .into_iter()
        .filter(|&(_, _, delta)| delta != 0)
        .map(|(bucket_no, _, delta)| BucketDelta { bucket_no, delta })
        .collect();
    deltas.sort_by_key(|d| d.bucket_no);
    deltas
}

/// The buyer's home bucket: a stable, non-negative hash of the user id.
pub fn home_bucket(user: &UserId, bucket_count: u32) -> u32 {
    let count = u64::from(bucket_count.max(1));
    u32::try_from(user.stable_hash() % count).unwrap_or(0)
}

/// The buckets to try for a buyer, home first, then the others in an order that
/// depends on the user so that probing buyers spread out instead of all moving to the
/// next bucket.
pub fn probe_order(user: &UserId, bucket_count: u32) -> impl Iterator<Item = u32> {
    let count = bucket_count.max(1);
    let home = home_bucket(user, count);
    // A stride co-prime with `count` visits every bucket exactly once.
    let seed = user.stable_hash().rotate_left(32);
    let mut stride = if count == 1 {
        1
    } else {
        u32::try_from(seed % u64::from(count - 1)).unwrap_or(0) + 1
    };
    while gcd(stride, count) != 1 {
        stride += 1;
    }
    (0..count).map(move |i| {
        u32::try_from((u64::from(home) + u64::from(i) * u64::from(stride)) % u64::from(count))
            .unwrap_or(0)
    })
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

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

    #[test]
    fn stock_splits_with_at_most_one_unit_between_buckets() {
        assert_eq!(split_evenly(10, 3), [4, 3, 3]);
        assert_eq!(split_evenly(2, 4), [1, 1, 0, 0]);
        assert_eq!(split_evenly(7, 1), [7]);
        for (total, count) in [(1_000_003_i64, 64_u32), (5, 1024), (10_000_000, 7)] {
            let split = split_evenly(total, count);
            assert_eq!(split.iter().sum::<i64>(), total);
            let (min, max) = (split.iter().min(), split.iter().max());
            assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1));
        }
    }

    #[test]
    fn added_units_fill_the_emptiest_buckets_first() {
        let plan = plan_addition(&buckets(&[5, 0, 2]), 6);
        assert_eq!(
            plan,
            [
                BucketDelta {
                    bucket_no: 1,
                    delta: 4
                },
                BucketDelta {
                    bucket_no: 2,
                    delta: 2
                },
            ]
        );
        let plan = plan_addition(&buckets(&[1, 1, 1]), 4);
        assert_eq!(plan.iter().map(|d| d.delta).sum::<i64>(), 4);
        assert!(plan.iter().all(|d| d.delta >= 1));
    }

    #[test]
    fn removed_units_come_from_the_fullest_buckets_and_never_more_than_unsold() {
        let plan = plan_removal(&buckets(&[5, 0, 2]), 4).expect("enough");
        // 5,0,2 → 1,0,2: the fullest gives first, ties broken by bucket number.
        assert_eq!(
            plan,
            [BucketDelta {
                bucket_no: 0,
                delta: -4
            }]
        );
        assert_eq!(
            plan_removal(&buckets(&[5, 0, 2]), 8),
            Err(ProductError::NotEnoughUnsold {
                requested: 8,
                unsold: 7
            })
        );
        let plan = plan_removal(&buckets(&[3, 3]), 6).expect("all");
        assert_eq!(plan.iter().map(|d| d.delta).sum::<i64>(), -6);
    }

    #[test]
    fn the_probe_order_visits_every_bucket_once_starting_at_home() {
        for count in [1_u32, 2, 7, 8, 64] {
            for name in ["alice", "bob", "carol", "u-17"] {
                let user = UserId::parse(name).expect("valid");
                let order: Vec<u32> = probe_order(&user, count).collect();
                assert_eq!(order[0], home_bucket(&user, count));
                assert_eq!(
                    order.iter().copied().collect::<HashSet<_>>().len(),
                    count as usize
                );
            }
        }
    }
}
