//! Reading orders: buyers their own, admins all.

use std::sync::Arc;

use flash_sale_client::{AdminOrderListQry, OrderDto, PageDto, PageQry};
use flash_sale_domain::gateway::{OrderFilter, OrderGateway};
use flash_sale_domain::product::ProductId;

use super::own_order;
use crate::Caller;
use crate::assembler;
use crate::error::AppError;

/// `GET /orders/{id}`: the caller's own order.
pub struct OrderGetQryExe {
    orders: Arc<dyn OrderGateway>,
}

impl OrderGetQryExe {
    /// Built over `orders`.
    pub fn new(orders: Arc<dyn OrderGateway>) -> Self {
        Self { orders }
    }

    /// The order, if it is the caller's.
    pub async fn execute(&self, caller: &Caller, id: &str) -> Result<OrderDto, AppError> {
        Ok(assembler::order_dto(
            &own_order(&self.orders, caller, id).await?,
        ))
    }
}

/// `GET /orders`: the caller's orders, newest first.
pub struct OrderListQryExe {
    orders: Arc<dyn OrderGateway>,
}

impl OrderListQryExe {
    /// Built over `orders`.
    pub fn new(orders: Arc<dyn OrderGateway>) -> Self {
        Self { orders }
    }

    /// One page.
    pub async fn execute(
        &self,
        caller: &Caller,
        qry: PageQry,
    ) -> Result<PageDto<OrderDto>, AppError> {
        let request = assembler::page_request(qry.page, qry.page_size);
        let page = self.orders.list_for_user(&caller.user_id, request).await?;
        Ok(assembler::page_dto(page, request, |o| {
            assembler::order_dto(&o)
        }))
    }
}

/// `GET /admin/orders?product_id=&status=`: every order, newest first.
pub struct AdminOrderListQryExe {
    orders: Arc<dyn OrderGateway>,
}

impl AdminOrderListQryExe {
    /// Built over `orders`.
    pub fn new(orders: Arc<dyn OrderGateway>) -> Self {
        Self { orders }
    }

    /// One page.
    pub async fn execute(&self, qry: AdminOrderListQry) -> Result<PageDto<OrderDto>, AppError> {
        let request = assembler::page_request(qry.page, qry.page_size);
        let filter = OrderFilter {
            product_id: qry.product_id.map(ProductId),
            status: qry.status.map(assembler::order_status),
        };
        let page = self.orders.list(filter, request).await?;
        Ok(assembler::page_dto(page, request, |o| {
            assembler::order_dto(&o)
        }))
    }
}
