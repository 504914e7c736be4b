//! [`FaultyOrders`]: an [`OrderGateway`] with planned faults.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{GatewayError, OrderFilter, OrderGateway, Release};
use flash_sale_domain::order::{IdempotencyKey, Order, OrderId};
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::product::{PerUserLimit, ProductId};

use super::Faults;

/// The real order gateway behind a fault plan. Keys: the order id (`place`, `find`,
/// `pay`, `release`), the user id (`find_by_idempotency_key`, `list_for_user`), the
/// product id (`held`, `quotas`).
pub struct FaultyOrders {
    inner: Arc<dyn OrderGateway>,
    faults: Faults,
}

impl FaultyOrders {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn OrderGateway>, faults: &Faults) -> Arc<dyn OrderGateway> {
        Arc::new(Self {
            inner,
            faults: faults.clone(),
        })
    }
}

#[async_trait]
impl OrderGateway for FaultyOrders {
    async fn place(&self, order: &Order, limit: PerUserLimit) -> Result<(), GatewayError> {
        faulty!(
            self,
            "place",
            format!("{} {}", order.id, order.user_id.as_str()),
            self.inner.place(order, limit)
        )
    }
    async fn find(&self, id: &OrderId) -> Result<Option<Order>, GatewayError> {
        faulty!(self, "find", id.to_string(), self.inner.find(id))
    }
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, GatewayError> {
        faulty!(
            self,
            "find_by_idempotency_key",
            user.as_str().to_owned(),
            self.inner.find_by_idempotency_key(user, key)
        )
    }
    async fn list_for_user(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError> {
        faulty!(
            self,
            "list_for_user",
            user.as_str().to_owned(),
            self.inner.list_for_user(user, page)
        )
    }
    async fn list(
        &self,
        filter: OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError> {
        faulty!(self, "list", String::new(), self.inner.list(filter, page))
    }
    async fn pay(&self, order: &Order) -> Result<(), GatewayError> {
        faulty!(self, "pay", order.id.to_string(), self.inner.pay(order))
    }
    async fn release(
        &self,
        id: &OrderId,
        release: Release,
        now: DateTime<Utc>,
        token: &str,
    ) -> Result<Option<Order>, GatewayError> {
        faulty!(
            self,
            "release",
            id.to_string(),
            self.inner.release(id, release, now, token)
        )
    }
    async fn expired(
        &self,
        now: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u64,
    ) -> Result<Vec<Order>, GatewayError> {
        faulty!(
            self,
            "expired",
            String::new(),
            self.inner.expired(now, after, limit)
        )
    }
    async fn held(&self, product_id: ProductId) -> Result<i64, GatewayError> {
        faulty!(
            self,
            "held",
            product_id.0.to_string(),
            self.inner.held(product_id)
        )
    }
    async fn quotas(&self, product_id: ProductId) -> Result<Vec<(UserId, u32)>, GatewayError> {
        faulty!(
            self,
            "quotas",
            product_id.0.to_string(),
            self.inner.quotas(product_id)
        )
    }
}
