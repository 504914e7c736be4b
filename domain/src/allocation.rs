//! [`Allocation`]: which buckets an order's (or a placement's) units came from.
//!
//! Most orders take every unit from one bucket. When no single bucket holds the
//! quantity but the product does, the units come from several; each part goes back to
//! its own bucket on a return, and a re-arrangement folds parts of removed buckets
//! into the buckets that remain.

use std::fmt;

use crate::stock::BucketDelta;

/// Units taken from one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BucketPart {
    /// The bucket.
    pub bucket_no: u32,
    /// Units from it (at least one).
    pub units: u32,
}

/// Where a reservation's units are: one part per bucket, never empty, each bucket at
/// most once. The first part is the order's main bucket (`bucket_no` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Allocation(Vec<BucketPart>);

impl Allocation {
    /// Every unit from one bucket.
    pub fn single(bucket_no: u32, units: u32) -> Self {
        Self(vec![BucketPart { bucket_no, units }])
    }

    /// The parts, in order; `None` when empty, when a part has no unit, when a bucket
    /// appears twice or when the units add up to more than a quantity can be.
    pub fn from_parts(parts: Vec<BucketPart>) -> Option<Self> {
        let distinct = parts
            .iter()
            .enumerate()
            .all(|(i, p)| parts[..i].iter().all(|q| q.bucket_no != p.bucket_no));
        let total = parts
            .iter()
            .try_fold(0u32, |sum, p| sum.checked_add(p.units));
        (!parts.is_empty() && distinct && parts.iter().all(|p| p.units > 0) && total.is_some())
            .then_some(Self(parts))
    }

    /// The parts, main bucket first.
    pub fn parts(&self) -> &[BucketPart] {
        &self.0
    }

    /// The main bucket.
    pub fn bucket_no(&self) -> u32 {
        self.0[0].bucket_no
    }

    /// Units in all parts.
    pub fn quantity(&self) -> u32 {
        self.0.iter().map(|p| p.units).sum()
    }

    /// Units taken from `bucket_no`.
    pub fn units_in(&self, bucket_no: u32) -> u32 {
        self.0
            .iter()
            .filter(|p| p.bucket_no == bucket_no)
            .map(|p| p.units)
            .sum()
    }

    /// Whether the units came from more than one bucket.
    pub fn is_split(&self) -> bool {
        self.0.len() > 1
    }

    /// The compact text form, `3:1,5:2` (see [`Allocation::parse`]).
    pub fn encode(&self) -> String {
        self.to_string()
    }

    /// Reads [`Allocation::encode`]'s form.
    pub fn parse(text: &str) -> Option<Self> {
        let parts = text
            .split(',')
            .map(|part| {
                let (bucket, units) = part.split_once(':')?;
                Some(BucketPart {
                    bucket_no: bucket.parse().ok()?,
                    units: units.parse().ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Self::from_parts(parts)
    }

    /// How it is stored beside `bucket_no` and `quantity`: `None` for one bucket (the
    /// two columns say it all), the text form otherwise.
    pub fn stored_split(&self) -> Option<String> {
        self.is_split().then(|| self.encode())
    }

    /// Rebuilds it from the stored columns (see [`Allocation::stored_split`]).
    pub fn from_stored(bucket_no: u32, quantity: u32, split: Option<&str>) -> Option<Self> {
        match split {
            None => (quantity > 0).then(|| Self::single(bucket_no, quantity)),
            Some(text) => {
                Self::parse(text).filter(|a| a.quantity() == quantity && a.bucket_no() == bucket_no)
            }
        }
    }

    /// The same units on a product re-arranged to `count` buckets: a part in a bucket
    /// at or past `count` moves to bucket `bucket_no % count` (merged with a part
    /// already there). Unchanged when every part's bucket remains.
    #[must_use]
    pub fn fold(&self, count: u32) -> Self {
        let count = count.max(1);
        let mut parts: Vec<BucketPart> = Vec::with_capacity(self.0.len());
        for part in &self.0 {
            let bucket_no = part.bucket_no % count;
            match parts.iter_mut().find(|p| p.bucket_no == bucket_no) {
                Some(existing) => existing.units += part.units,
                None => parts.push(BucketPart {
                    bucket_no,
                    units: part.units,
                }),
            }
        }
        Self(parts)
    }

    /// Whether [`Allocation::fold`] onto `count` buckets changes it.
    pub fn needs_fold(&self, count: u32) -> bool {
        self.0.iter().any(|p| p.bucket_no >= count.max(1))
    }

    /// One delta per part, `sign` × its units (`1` gives units back, `-1` takes them).
    pub fn deltas(&self, sign: i64) -> Vec<BucketDelta> {
        self.0
            .iter()
            .map(|p| BucketDelta {
                bucket_no: p.bucket_no,
                delta: sign * i64::from(p.units),
            })
            .collect()
    }
}

impl fmt::Display for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", part.bucket_no, part.units)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(u32, u32)]) -> Allocation {
        Allocation::from_parts(
            list.iter()
                .map(|&(bucket_no, units)| BucketPart { bucket_no, units })
                .collect(),
        )
        .expect("valid")
    }

    #[test]
    fn an_allocation_round_trips_through_its_text_and_stored_forms() {
        let split = parts(&[(5, 1), (2, 1)]);
        assert_eq!(split.encode(), "5:1,2:1");
        assert_eq!(Allocation::parse("5:1,2:1"), Some(split.clone()));
        assert_eq!(split.stored_split().as_deref(), Some("5:1,2:1"));
        assert_eq!(
            Allocation::from_stored(5, 2, Some("5:1,2:1")),
            Some(split.clone())
        );
        assert_eq!(Allocation::from_stored(5, 3, Some("5:1,2:1")), None);
        let single = Allocation::single(3, 2);
        assert_eq!(single.stored_split(), None);
        assert_eq!(Allocation::from_stored(3, 2, None), Some(single));
        for bad in ["", "1", "1:0", "a:1", "1:1,1:2", "1:1,"] {
            assert_eq!(Allocation::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn folding_moves_removed_buckets_onto_the_remaining_ones_and_merges_parts() {
        let split = parts(&[(5, 1), (2, 2), (7, 1)]);
        assert!(split.needs_fold(3));
        let folded = split.fold(3);
        assert_eq!(folded, parts(&[(2, 3), (1, 1)]));
        assert_eq!(folded.quantity(), split.quantity());
        assert!(!folded.needs_fold(3));
        assert_eq!(parts(&[(1, 2)]).fold(8), parts(&[(1, 2)]));
        assert_eq!(split.units_in(2), 2);
    }
}
