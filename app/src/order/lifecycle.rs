//! After an order is placed: payment, cancellation by the buyer, expiry by the job.

use std::sync::Arc;

use flash_sale_domain::Chain;
use futures::StreamExt;

use flash_sale_client::{OrderDto, OrderPayCmd};
use flash_sale_domain::gateway::{Clock, GatewayError, OrderGateway, Release};
use flash_sale_domain::order::{OrderError, Payment, TransactionId};

use super::own_order;
use crate::Caller;
use crate::assembler;
use crate::error::AppError;
use crate::stock::StockService;

/// `POST /orders/{id}/pay`.
pub struct OrderPayCmdExe {
    orders: Arc<dyn OrderGateway>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
}

impl OrderPayCmdExe {
    /// Built from its collaborators.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            orders,
            stock,
            clock,
        }
    }

    /// Pays the caller's order: the exact total, a transaction id no other order
    /// has, before it expires. The same transaction id again answers the paid order.
    #[tracing::instrument(skip_all, fields(order.id = id))]
    pub async fn execute(
        &self,
        caller: &Caller,
        id: &str,
        cmd: OrderPayCmd,
    ) -> Result<OrderDto, AppError> {
        let transaction_id = TransactionId::parse(&cmd.transaction_id)?;
        // A concurrent cancel or expiry can win between reading and writing: then the
        // order is read again and the domain decides once more.
        for _ in 0..2 {
            let mut order = own_order(&self.orders, caller, id).await?;
            let now = self.clock.now();
            match order.pay(&transaction_id, cmd.amount, now) {
                Ok(Payment::AlreadyPaid) => return Ok(assembler::order_dto(&order)),
                Ok(Payment::Paid) => match self.orders.pay(&order).await {
                    Ok(()) => {
                        tracing::info!("order paid");
                        return Ok(assembler::order_dto(&order));
                    }
                    Err(GatewayError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                },
                Err(OrderError::PaymentTooLate) => {
                    // Do the expiry's job now rather than within the next tick.
                    if let Err(e) = self
                        .stock
                        .release_order(order.product_id, &order.id, Release::Expired, now)
                        .await
                    {
                        tracing::warn!(error = %Chain(&e), "could not expire a late-paid order now; the job will");
                    }
                    return Err(AppError::domain(OrderError::PaymentTooLate));
                }
                Err(e) => return Err(AppError::domain(e)),
            }
        }
        Err(AppError::domain(OrderError::NotPending {
            status: own_order(&self.orders, caller, id).await?.status,
        }))
    }
}

/// `POST /orders/{id}/cancel`.
pub struct OrderCancelCmdExe {
    orders: Arc<dyn OrderGateway>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
}

impl OrderCancelCmdExe {
    /// Built from its collaborators.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            orders,
            stock,
            clock,
        }
    }

    /// Cancels the caller's unpaid order; its units and quota come back exactly once
    /// (a concurrent second cancel gets `INVALID_STATE`).
    #[tracing::instrument(skip_all, fields(order.id = id))]
    pub async fn execute(&self, caller: &Caller, id: &str) -> Result<OrderDto, AppError> {
        let mut order = own_order(&self.orders, caller, id).await?;
        let now = self.clock.now();
        order.cancel(now).map_err(AppError::domain)?;
        // The database decides, with the order's row locked: the units go back to the
        // buckets the order names then (a re-arrangement may have moved them).
        let Some(cancelled) = self
            .stock
            .release_order(order.product_id, &order.id, Release::Cancelled, now)
            .await?
        else {
            let current = own_order(&self.orders, caller, id).await?;
            return Err(AppError::domain(OrderError::NotPending {
                status: current.status,
            }));
        };
        tracing::info!("order cancelled");
        Ok(assembler::order_dto(&cancelled))
    }
}

/// The expiry job's work: unpaid orders past `expires_at` give their units back.
pub struct OrderExpireJobExe {
    orders: Arc<dyn OrderGateway>,
    stock: Arc<StockService>,
    clock: Arc<dyn Clock>,
}

/// Orders read per batch.
const EXPIRY_BATCH: u64 = 200;
/// Orders expired at once.
const EXPIRY_CONCURRENCY: usize = 16;

impl OrderExpireJobExe {
    /// Built from its collaborators.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        stock: Arc<StockService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            orders,
            stock,
            clock,
        }
    }

    /// Expires every order that is due, order by order and several at a time; one
    /// that fails is logged and left for the next run while the others go on.
    /// Idempotent, and safe with several instances (each order is released at most
    /// once). Returns how many this call expired.
    pub async fn execute(&self) -> Result<usize, AppError> {
        let now = self.clock.now();
        let mut expired = 0;
        let mut after = None;
        loop {
            let due = self.orders.expired(now, after, EXPIRY_BATCH).await?;
            let Some(last) = due.last() else {
                return Ok(expired);
            };
            after = Some((last.expires_at, last.id.clone()));
            let count = due.len();
            let stock = &self.stock;
            let results: Vec<_> = futures::stream::iter(due)
                .map(|order| async move {
                    let released = stock
                        .release_order(order.product_id, &order.id, Release::Expired, now)
                        .await;
                    (order.id, released)
                })
                .buffer_unordered(EXPIRY_CONCURRENCY)
                .collect()
                .await;
            for (id, released) in results {
                match released {
                    Ok(Some(_)) => {
                        expired += 1;
                        tracing::info!(order.id = %id, "unpaid order expired");
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(order.id = %id, error = ?e, "could not expire an order now; the next run tries again");
                    }
                }
            }
            if (count as u64) < EXPIRY_BATCH {
                return Ok(expired);
            }
        }
    }
}
