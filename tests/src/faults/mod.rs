//! Fault injection at the ports: wrappers around a real gateway that forward every
//! call, except where a test has planned a fault — fail the next calls, delay them,
//! or pause one call (before or after the real work) until the test lets it go.
//!
//! A plan names the operation (`"release"`, `"reserve"`, …) and optionally a key that
//! must appear in the call's arguments (an order id, a user id, a product id). Calls
//! are counted per operation, so a test can also check what did *not* happen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flash_sale_domain::gateway::GatewayError;
use tokio::sync::watch;

/// Where a planned fault acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Before,
    After,
}

#[derive(Debug, Clone)]
enum Action {
    Fail,
    Delay(Duration),
    Pause(Gate),
}

#[derive(Debug, Clone)]
struct Rule {
    op: &'static str,
    key: Option<String>,
    when: When,
    action: Action,
    /// How many more calls it applies to (`None`: every call).
    left: Option<usize>,
}

/// A pause point: the paused call reports that it got there, and waits until the test
/// opens the gate.
#[derive(Debug, Clone)]
pub struct Gate {
    reached: watch::Sender<bool>,
    open: watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            reached: watch::channel(false).0,
            open: watch::channel(false).0,
        }
    }
}

impl Gate {
    /// Waits until a call has reached the gate.
    pub async fn reached(&self) {
        let mut rx = self.reached.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Lets the paused call (and every later one) through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    async fn pass(&self) {
        self.reached.send_replace(true);
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|o| *o).await;
    }
}

/// The faults planned for one service, shared by every wrapper built from it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    calls: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Faults {
    /// A plan with no fault.
    pub fn new() -> Self {
        Self::default()
    }

    fn plan(&self, rule: Rule) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(rule);
    }

    /// The next `times` calls of `op` fail as `Unavailable` before reaching the gateway.
    pub fn fail(&self, op: &'static str, times: usize) {
        self.plan(Rule {
            op,
            key: None,
            when: When::Before,
            action: Action::Fail,
            left: Some(times),
        });
    }

    /// Every call of `op` waits `delay` before it reaches the gateway (a slow call).
    pub fn delay_before(&self, op: &'static str, delay: Duration) {
        self.plan(Rule {
            op,
            key: None,
            when: When::Before,
            action: Action::Delay(delay),
            left: None,
        });
    }

    /// Every call of `op` waits `delay` after the gateway answered (a slow reply).
    pub fn delay_after(&self, op: &'static str, delay: Duration) {
        self.plan(Rule {
            op,
            key: None,
            when: When::After,
            action: Action::Delay(delay),
            left: None,
        });
    }

    /// The next `times` calls of `op` whose arguments contain `key` fail as
    /// `Unavailable` before reaching the gateway.
    pub fn fail_matching(&self, op: &'static str, key: &str, times: usize) {
        self.plan(Rule {
            op,
            key: Some(key.to_owned()),
            when: When::Before,
            action: Action::Fail,
            left: Some(times),
        });
    }

    /// The next `times` calls of `op` reach the gateway (their work is done) and then
    /// fail as `Unavailable` — a reply lost after the work.
    pub fn fail_after(&self, op: &'static str, times: usize) {
        self.plan(Rule {
            op,
            key: None,
            when: When::After,
            action: Action::Fail,
            left: Some(times),
        });
    }

    /// The next call of `op` whose arguments contain `key` waits at the returned gate
    /// before it reaches the gateway.
    pub fn pause_before(&self, op: &'static str, key: &str) -> Gate {
        self.pause(op, key, When::Before)
    }

    /// The next call of `op` whose arguments contain `key` does its work, then waits
    /// at the returned gate before its caller sees the answer.
    pub fn pause_after(&self, op: &'static str, key: &str) -> Gate {
        self.pause(op, key, When::After)
    }

    fn pause(&self, op: &'static str, key: &str, when: When) -> Gate {
        let gate = Gate::default();
        self.plan(Rule {
            op,
            key: Some(key.to_owned()),
            when,
            action: Action::Pause(gate.clone()),
            left: Some(1),
        });
        gate
    }

    /// Forgets every planned fault.
    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many calls of `op` the wrappers have seen.
    pub fn calls(&self, op: &str) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(op)
            .copied()
            .unwrap_or(0)
    }

    /// Every planned action that applies to this call, in the order planned (each
    /// counted against its rule).
    fn take(&self, op: &'static str, key: &str, when: When) -> Vec<Action> {
        let mut rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter_mut()
            .filter(|r| {
                r.op == op
                    && r.when == when
                    && r.left != Some(0)
                    && r.key.as_deref().is_none_or(|k| key.contains(k))
            })
            .map(|rule| {
                if let Some(left) = rule.left.as_mut() {
                    *left -= 1;
                }
                rule.action.clone()
            })
            .collect()
    }

    async fn act_all(&self, actions: Vec<Action>) -> Result<(), GatewayError> {
        let mut outcome = Ok(());
        for action in actions {
            if let Err(e) = self.act(action).await {
                outcome = outcome.and(Err(e));
            }
        }
        outcome
    }

    async fn act(&self, action: Action) -> Result<(), GatewayError> {
        match action {
            Action::Fail => Err(GatewayError::Unavailable("injected fault".into())),
            Action::Delay(delay) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Action::Pause(gate) => {
                gate.pass().await;
                Ok(())
            }
        }
    }

    /// Called by a wrapper before it forwards `op`; an injected failure is returned.
    pub async fn before(&self, op: &'static str, key: &str) -> Result<(), GatewayError> {
        *self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(op)
            .or_default() += 1;
        self.act_all(self.take(op, key, When::Before)).await
    }

    /// Called by a wrapper after the gateway answered `op`; an injected failure
    /// replaces the answer.
    pub async fn after(&self, op: &'static str, key: &str) -> Result<(), GatewayError> {
        self.act_all(self.take(op, key, When::After)).await
    }
}

/// Forwards a call through the plan: `faulty!(self, "op", key, self.inner.op(args))`.
macro_rules! faulty {
    ($self:ident, $op:literal, $key:expr, $call:expr) => {{
        let key: String = $key;
        $self.faults.before($op, &key).await?;
        let result = $call.await;
        $self.faults.after($op, &key).await?;
        result
    }};
}

mod ledger;
mod orders;
mod placements;

pub use ledger::FaultyLedger;
pub use orders::FaultyOrders;
pub use placements::{FaultyPlacements, FaultyQueue};
