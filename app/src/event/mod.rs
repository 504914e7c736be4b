//! Admin use cases on events, and [`AdminViews`], the fresh (uncached) reads they
//! answer with.

mod command;
mod query;

use std::sync::Arc;

use flash_sale_client::{EventDto, ProductDto};
use flash_sale_domain::event::{Event, EventId};
use flash_sale_domain::gateway::{EventGateway, ProductGateway};
use flash_sale_domain::product::{Product, ProductId};

pub use command::{EventCreateCmdExe, EventPatchCmdExe, EventStatusCmdExe};
pub use query::{EventGetQryExe, EventListQryExe};

use crate::assembler;
use crate::error::AppError;
use crate::policy::OrderingPolicy;
use crate::ports::Ports;

/// Loads what admins see, straight from the database.
#[derive(Clone)]
pub struct AdminViews {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    policy: Arc<OrderingPolicy>,
}

impl AdminViews {
    /// Views over `ports`.
    pub fn new(ports: &Ports, policy: Arc<OrderingPolicy>) -> Self {
        Self {
            events: ports.events.clone(),
            products: ports.products.clone(),
            policy,
        }
    }

    /// The event, or `NotFound`.
    pub async fn event(&self, id: EventId) -> Result<Event, AppError> {
        self.events
            .find(id)
            .await?
            .ok_or(AppError::NotFound("event"))
    }

    /// The product, or `NotFound`.
    pub async fn product(&self, id: ProductId) -> Result<Product, AppError> {
        self.products
            .find(id)
            .await?
            .ok_or(AppError::NotFound("product"))
    }

    /// The strategy orders for `event` use now.
    pub fn effective(&self, event: &Event) -> flash_sale_domain::Strategy {
        self.policy.effective(event)
    }

    /// An event's DTO.
    pub fn event_dto(&self, event: &Event) -> EventDto {
        assembler::event_dto(event, self.policy.effective(event))
    }

    /// A product's DTO with its DB stock.
    pub async fn product_dto(&self, product: &Product) -> Result<ProductDto, AppError> {
        let available = self.products.available(&[product.id]).await?;
        Ok(assembler::product_dto(
            product,
            available.get(&product.id).copied().unwrap_or(0),
        ))
    }

    /// Every product of an event, with their DB stock.
    pub async fn product_dtos(&self, event_id: EventId) -> Result<Vec<ProductDto>, AppError> {
        let products = self.products.list_for_event(event_id).await?;
        let ids: Vec<ProductId> = products.iter().map(|p| p.id).collect();
        let available = self.products.available(&ids).await?;
        Ok(products
            .iter()
            .map(|p| assembler::product_dto(p, available.get(&p.id).copied().unwrap_or(0)))
            .collect())
    }
}
