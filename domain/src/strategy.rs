//! The three ordering strategies (DESIGN §4).

use std::fmt;
use std::str::FromStr;

/// Declares `Strategy` with its wire names, so that `ALL` and `as_str` can never miss
/// a variant.
macro_rules! strategies {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// How orders for an event are taken.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Strategy {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Strategy {
            /// Every strategy.
            pub const ALL: [Self; [$($name),*].len()] = [$(Self::$variant),*];

            /// The name used on the wire, in config and in storage.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

strategies! {
    /// Reserve, then write the order in the same request.
    Sync => "sync",
    /// Reserve, queue a placement, persist behind the queue.
    Async => "async",
    /// Like sync, with the stock split across buckets.
    Buckets => "buckets",
}

impl Strategy {
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
#[error("unknown strategy `{0}` (expected one of: {names})", names = names())]
pub struct UnknownStrategy(pub String);

/// Every strategy's name, comma-separated.
fn names() -> String {
    Strategy::ALL.map(Strategy::as_str).join(", ")
}

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
