//! [`FaultyLedger`]: a [`StockLedger`] with planned faults.

use std::sync::Arc;

use async_trait::async_trait;
use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    GatewayError, InFlight, LedgerView, Reservation, ReserveRequest, Settlement, StockLedger,
    Suspension,
};
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::{BucketDelta, StockBucket};

use super::Faults;

/// The real stock ledger behind a fault plan. Keys: the product id and, for
/// `reserve`, the buyer (`"7 alice"`); the token too for `settle` and the returns.
pub struct FaultyLedger {
    inner: Arc<dyn StockLedger>,
    faults: Faults,
}

impl FaultyLedger {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn StockLedger>, faults: &Faults) -> Arc<dyn StockLedger> {
        Arc::new(Self {
            inner,
            faults: faults.clone(),
        })
    }
}

fn product(id: ProductId) -> String {
    id.0.to_string()
}

#[async_trait]
impl StockLedger for FaultyLedger {
    async fn reserve<'a>(&self, request: ReserveRequest<'a>) -> Result<Reservation, GatewayError> {
        let key = format!("{} {}", request.product_id.0, request.user_id.as_str());
        faulty!(self, "reserve", key, self.inner.reserve(request))
    }
    fn records_placements(&self) -> bool {
        self.inner.records_placements()
    }
    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        allocation: &Allocation,
        settlement: Settlement,
    ) -> Result<(), GatewayError> {
        let key = format!("{} {token}", product_id.0);
        faulty!(
            self,
            "settle",
            key,
            self.inner.settle(product_id, token, allocation, settlement)
        )
    }
    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<bool, GatewayError> {
        let key = format!("{} {token}", product_id.0);
        faulty!(
            self,
            "begin_return",
            key,
            self.inner.begin_return(product_id, token)
        )
    }
    async fn finish_return<'u>(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&'u UserId, u32)>,
    ) -> Result<(), GatewayError> {
        let key = format!("{} {token}", product_id.0);
        faulty!(
            self,
            "finish_return",
            key,
            self.inner.finish_return(product_id, token, deltas, quota)
        )
    }
    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError> {
        faulty!(
            self,
            "take",
            product(product_id),
            self.inner.take(product_id, deltas)
        )
    }
    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError> {
        faulty!(
            self,
            "load",
            product(product_id),
            self.inner.load(product_id, buckets, quotas, in_flight)
        )
    }
    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError> {
        faulty!(
            self,
            "is_loaded",
            product(product_id),
            self.inner.is_loaded(product_id)
        )
    }
    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError> {
        faulty!(
            self,
            "view",
            product(product_id),
            self.inner.view(product_id)
        )
    }
    async fn suspend(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        faulty!(
            self,
            "suspend",
            product(product_id),
            self.inner.suspend(product_id, suspension)
        )
    }
    async fn renew(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError> {
        faulty!(
            self,
            "renew",
            product(product_id),
            self.inner.renew(product_id, suspension)
        )
    }
    async fn resume(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<(), GatewayError> {
        faulty!(
            self,
            "resume",
            product(product_id),
            self.inner.resume(product_id, suspension)
        )
    }
}
