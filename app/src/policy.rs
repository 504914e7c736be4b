//! Which ordering strategy an event uses now (DESIGN §4): a configuration override for
//! that event, else the event's own `strategy`, else the configured default. The
//! configuration can be replaced at run time (file change, SIGHUP).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use flash_sale_domain::Strategy;
use flash_sale_domain::event::{Event, EventId};

/// The `ordering.*` settings that pick strategies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderingConfig {
    /// For events whose `strategy` is null.
    pub default_strategy: Strategy,
    /// Event id → strategy, winning over the event's own.
    pub overrides: HashMap<EventId, Strategy>,
    /// Buckets for a `buckets` product created without `bucket_count`.
    pub bucket_count: u32,
}

impl Default for OrderingConfig {
    fn default() -> Self {
        Self {
            default_strategy: Strategy::Sync,
            overrides: HashMap::new(),
            bucket_count: 8,
        }
    }
}

/// The current [`OrderingConfig`], swappable while the service runs.
#[derive(Debug, Default)]
pub struct OrderingPolicy {
    config: RwLock<Arc<OrderingConfig>>,
}

impl OrderingPolicy {
    /// A policy starting with `config`.
    pub fn new(config: OrderingConfig) -> Self {
        Self {
            config: RwLock::new(Arc::new(config)),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<OrderingConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts `config` in force; returns the previous one.
    pub fn replace(&self, config: OrderingConfig) -> Arc<OrderingConfig> {
        let mut slot = self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *slot, Arc::new(config))
    }

    /// The strategy `event` uses now.
    pub fn effective(&self, event: &Event) -> Strategy {
        Self::resolve(&self.config(), event.id, event.strategy)
    }

    /// The strategy for an event with id `id` and own strategy `own`, under `config`.
    pub fn resolve(config: &OrderingConfig, id: EventId, own: Option<Strategy>) -> Strategy {
        config
            .overrides
            .get(&id)
            .copied()
            .or(own)
            .unwrap_or(config.default_strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_beats_the_event_which_beats_the_default() {
        let mut config = OrderingConfig {
            default_strategy: Strategy::Async,
            ..OrderingConfig::default()
        };
        assert_eq!(
            OrderingPolicy::resolve(&config, EventId(1), None),
            Strategy::Async
        );
        assert_eq!(
            OrderingPolicy::resolve(&config, EventId(1), Some(Strategy::Sync)),
            Strategy::Sync
        );
        config.overrides.insert(EventId(1), Strategy::Buckets);
        assert_eq!(
            OrderingPolicy::resolve(&config, EventId(1), Some(Strategy::Sync)),
            Strategy::Buckets
        );
        assert_eq!(
            OrderingPolicy::resolve(&config, EventId(2), None),
            Strategy::Async
        );
    }

    #[test]
    fn a_replaced_configuration_applies_at_once() {
        let policy = OrderingPolicy::new(OrderingConfig::default());
        let old = policy.replace(OrderingConfig {
            default_strategy: Strategy::Buckets,
            ..OrderingConfig::default()
        });
        assert_eq!(old.default_strategy, Strategy::Sync);
        assert_eq!(policy.config().default_strategy, Strategy::Buckets);
    }
}
