//! The three ordering strategies (DESIGN §4).

use std::fmt;
use std::str::FromStr;

/// How orders for an event are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Reserve, then write the order in the same request.
    Sync,
    /// Reserve, queue a placement, persist behind the queue.
    Async,
    /// Like sync, with the stock split across buckets.
    Buckets,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Self; 3] = [Self::Sync, Self::Async, Self::Buckets];

    /// The name used on the wire, in config and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
            Self::Buckets => "buckets",
        }
    }

    /// Whether a product sold this way has its stock split over several buckets
    /// (`ordering.bucket_count` unless it names its own), rather than one.
    pub fn splits_stock(self) -> bool {
        match self {
            Self::Buckets => true,
            Self::Sync | Self::Async => false,
        }
    }

    /// Whether an order placed this way is first a queued placement (answered 202),
    /// rather than written in the request (201).
    pub fn queues_orders(self) -> bool {
        match self {
            Self::Async => true,
            Self::Sync | Self::Buckets => false,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a strategy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy `{0}` (expected sync, async or buckets)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip_through_their_names() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        }
        assert!("fast".parse::<Strategy>().is_err());
    }
}
