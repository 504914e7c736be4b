//! [`TallyGateway`] in process: one instance's counts, the last [`KEEP`] seconds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use flash_sale_domain::gateway::{GatewayError, Tally, TallyGateway};
use flash_sale_domain::product::ProductId;

/// Seconds of counts kept.
pub const KEEP: i64 = 300;

/// The console's counts of this instance.
#[derive(Debug, Default)]
pub struct EmbeddedTally {
    seconds: Mutex<HashMap<ProductId, BTreeMap<i64, Tally>>>,
}

#[async_trait]
impl TallyGateway for EmbeddedTally {
    async fn add(&self, second: i64, counts: &[(ProductId, Tally)]) -> Result<(), GatewayError> {
        let mut seconds = self.seconds.lock().unwrap_or_else(PoisonError::into_inner);
        for (product, tally) in counts {
            let kept = seconds.entry(*product).or_default();
            let into = kept.entry(second).or_default();
            for (sum, n) in into.iter_mut().zip(tally) {
                *sum += n;
            }
            *kept = kept.split_off(&(second - KEEP));
        }
        Ok(())
    }

    async fn since(
        &self,
        product: ProductId,
        since: i64,
    ) -> Result<Vec<(i64, Tally)>, GatewayError> {
        let seconds = self.seconds.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(seconds.get(&product).map_or_else(Vec::new, |kept| {
            kept.range(since..).map(|(s, t)| (*s, *t)).collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_add_up_per_second_and_old_seconds_go() {
        let tally = EmbeddedTally::default();
        let p = ProductId(7);
        tally
            .add(100, &[(p, [1, 2, 0, 0, 0, 0])])
            .await
            .expect("add");
        tally
            .add(100, &[(p, [3, 0, 0, 0, 0, 1])])
            .await
            .expect("add");
        tally
            .add(101, &[(p, [0, 5, 0, 0, 0, 0])])
            .await
            .expect("add");
        assert_eq!(
            tally.since(p, 100).await.expect("read"),
            vec![(100, [4, 2, 0, 0, 0, 1]), (101, [0, 5, 0, 0, 0, 0])]
        );
        assert_eq!(tally.since(p, 101).await.expect("read").len(), 1);
        assert!(tally.since(ProductId(8), 0).await.expect("read").is_empty());
        tally
            .add(100 + KEEP + 1, &[(p, [1, 0, 0, 0, 0, 0])])
            .await
            .expect("add");
        assert_eq!(
            tally.since(p, 0).await.expect("read")[0].0,
            101,
            "second 100 is gone"
        );
    }
}
