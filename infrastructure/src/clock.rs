//! The system clock.

use chrono::{DateTime, SubsecRound, Utc};
use flash_sale_domain::gateway::Clock;

/// Wall-clock time in UTC, cut to microseconds so it round-trips through every
/// database unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}
