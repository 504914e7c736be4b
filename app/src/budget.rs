//! The time budget of a request (DESIGN §4 "Time budget"): the adapter sets a
//! deadline around each request, and the use cases check it before they consume
//! anything — a request that has already waited too long (a stalled dependency, a
//! pile-up) answers 503 with nothing reserved instead of starting late.

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as its budget.
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// Whether the current request's budget is spent (never, outside a request).
pub(crate) fn exhausted() -> bool {
    DEADLINE
        .try_with(|deadline| Instant::now() >= *deadline)
        .unwrap_or(false)
}

/// The current request's deadline, if any.
pub(crate) fn deadline() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_budget_is_spent_once_its_deadline_passes_and_only_inside_its_scope() {
        assert!(!exhausted(), "no request, no budget");
        let deadline = Instant::now() + Duration::from_millis(30);
        within(deadline, async {
            assert!(!exhausted());
            assert_eq!(super::deadline(), Some(deadline));
            tokio::time::sleep(Duration::from_millis(40)).await;
            assert!(exhausted());
        })
        .await;
        assert!(!exhausted());
    }
}
