//! `sync` and `buckets`: reserve, then one database transaction, then 201.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flash_sale_domain::Chain;
use flash_sale_domain::gateway::{
    Clock, GatewayError, HoldKind, OrderGateway, Settlement, UniqueKey,
};
use flash_sale_domain::order::{NewOrder, Order, OrderId};

use super::{OrderingStrategy, PlaceContext, PlaceOrderOutcome, replay, reserve};
use crate::assembler;
use crate::error::AppError;
use crate::stock::StockService;

/// `sync` (and `buckets`, whose difference lives in the product's bucket layout):
/// reserve stock and quota in the ledger, then one database transaction; any failure
/// after the reservation releases it.
pub struct SyncOrdering {
    orders: Arc<dyn OrderGateway>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
    payment_timeout: chrono::Duration,
}

impl SyncOrdering {
    /// A strategy writing through `orders`.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
        payment_timeout: Duration,
    ) -> Self {
        Self {
            orders,
            stock,
            clock,
            payment_timeout: chrono::Duration::from_std(payment_timeout)
                .unwrap_or(chrono::Duration::minutes(15)),
        }
    }
}

#[async_trait]
impl OrderingStrategy for SyncOrdering {
    #[tracing::instrument(skip_all, fields(product.id = ctx.product.id.0, order.quantity = ctx.request.quantity))]
    async fn place(&self, ctx: PlaceContext<'_>) -> Result<PlaceOrderOutcome, AppError> {
        let limit = ctx.product.per_user_limit;
        let id = OrderId::generate();
        let allocation = reserve(&self.stock, &ctx, id.as_str(), HoldKind::Order, None).await?;
        let settle = |settlement| {
            self.stock
                .settle(ctx.product.id, id.as_str(), &allocation, settlement)
        };
        let order = match Order::place(NewOrder {
            id: id.clone(),
            user_id: ctx.user.clone(),
            event_id: ctx.event.id,
            request: ctx.request,
            allocation: allocation.clone(),
            unit_price: ctx.product.pricing.flash(),
            strategy: ctx.strategy,
            idempotency_key: ctx.key.cloned(),
            placement_id: None,
            now: self.clock.now(),
            payment_timeout: self.payment_timeout,
        }) {
            Ok(order) => order,
            Err(e) => {
                settle(Settlement::Released).await;
                return Err(AppError::domain(e));
            }
        };
        let written = match self.orders.place(&order, limit).await {
            // The commit's answer was lost: was the order written? Ask before answering.
            Err(GatewayError::Unavailable(e)) => {
                match crate::order::confirm(|| async {
                    Ok(self.orders.find(&order.id).await?.is_some())
                })
                .await
                {
                    Some(true) => Ok(()),
                    Some(false) => Err(GatewayError::Unavailable(e)),
                    None => {
                        // Nobody can tell now: the hold stays for the recovery job, which
                        // asks the database later and commits or releases it.
                        tracing::warn!(order.id = %order.id, error = %Chain(&e), "an order's commit could not be confirmed; the recovery job settles its hold");
                        return Err(AppError::Unavailable(
                        "the order could not be confirmed; retry with the same Idempotency-Key to learn its outcome".into(),
                    ));
                    }
                }
            }
            other => other,
        };
        match written {
            Ok(()) => {
                settle(Settlement::Committed).await;
                Ok(PlaceOrderOutcome::Created(assembler::order_dto(&order)))
            }
            Err(error) => {
                settle(Settlement::Released).await;
                match (error, ctx.key) {
                    (GatewayError::Duplicate(UniqueKey::IdempotencyKey), Some(key)) => {
                        let first = self
                            .orders
                            .find_by_idempotency_key(ctx.user, key)
                            .await?
                            .ok_or_else(|| {
                                AppError::Unavailable("the first order is not visible yet".into())
                            })?;
                        replay(&first, &ctx.request)
                    }
                    (GatewayError::Rejected(rejected), _) => {
                        tracing::warn!(error = %rejected, "the database refused what the stock ledger reserved; reconcile if it repeats");
                        Err(AppError::Domain(rejected))
                    }
                    (error, _) => Err(error.into()),
                }
            }
        }
    }
}
