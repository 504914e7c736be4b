//! Creating, editing and publishing events.

use std::sync::Arc;

use flash_sale_client::{EventCreateCmd, EventDto, EventPatchCmd};
use flash_sale_domain::event::{EventChanges, EventId, NewEvent};
use flash_sale_domain::gateway::{Clock, EventGateway, ProductGateway};

use super::AdminViews;
use crate::assembler;
use crate::catalogue::CatalogueService;
use crate::error::AppError;
use crate::ports::Ports;
use crate::stock::StockService;

/// `POST /admin/events`: a new draft event.
pub struct EventCreateCmdExe {
    events: Arc<dyn EventGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
}

impl EventCreateCmdExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews) -> Self {
        Self {
            events: ports.events.clone(),
            clock: ports.clock.clone(),
            views,
        }
    }

    /// Checks and stores the event.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, cmd: EventCreateCmd) -> Result<EventDto, AppError> {
        let new = NewEvent::new(
            &cmd.title,
            cmd.description.as_deref(),
            cmd.starts_at,
            cmd.ends_at,
            cmd.strategy.map(assembler::strategy),
        )?;
        let event = self.events.insert(new, self.clock.now()).await?;
        tracing::info!(event.id = event.id.0, "event created");
        Ok(self.views.event_dto(&event))
    }
}

/// `PATCH /admin/events/{id}`: edits a draft or offline event.
pub struct EventPatchCmdExe {
    events: Arc<dyn EventGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
}

impl EventPatchCmdExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews, catalogue: Arc<CatalogueService>) -> Self {
        Self {
            events: ports.events.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
        }
    }

    /// Applies the changes; refused while the event is online.
    #[tracing::instrument(skip_all, fields(event.id = id))]
    pub async fn execute(&self, id: i64, cmd: EventPatchCmd) -> Result<EventDto, AppError> {
        let id = EventId(id);
        let mut event = self.views.event(id).await?;
        let changes = EventChanges {
            title: cmd.title,
            description: cmd.description,
            starts_at: cmd.starts_at,
            ends_at: cmd.ends_at,
            strategy: cmd.strategy.map(|s| s.map(assembler::strategy)),
        };
        event
            .edit(&changes, self.clock.now())
            .map_err(AppError::domain)?;
        self.events.update(&event).await?;
        self.catalogue.invalidate_event(id).await;
        Ok(self.views.event_dto(&event))
    }
}

/// `POST /admin/events/{id}/online` and `/offline`.
pub struct EventStatusCmdExe {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
}

impl EventStatusCmdExe {
    /// Built over `ports`.
    pub fn new(
        ports: &Ports,
        views: AdminViews,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            events: ports.events.clone(),
            products: ports.products.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
            stock,
        }
    }

    /// Puts the event on sale (it needs a product) and warms its products' stock
    /// into the stock ledger.
    #[tracing::instrument(skip_all, fields(event.id = id))]
    pub async fn online(&self, id: i64) -> Result<EventDto, AppError> {
        let id = EventId(id);
        let mut event = self.views.event(id).await?;
        let products = self.products.count_for_event(id).await?;
        event
            .go_online(products, self.clock.now())
            .map_err(AppError::domain)?;
        self.events.update(&event).await?;
        self.catalogue.invalidate_event(id).await;
        let products = self.products.list_for_event(id).await?;
        self.stock
            .warm(products.iter().map(|p| p.id).collect())
            .await;
        tracing::info!("event online");
        Ok(self.views.event_dto(&event))
    }

    /// Takes the event off sale.
    #[tracing::instrument(skip_all, fields(event.id = id))]
    pub async fn offline(&self, id: i64) -> Result<EventDto, AppError> {
        let id = EventId(id);
        let mut event = self.views.event(id).await?;
        event
            .go_offline(self.clock.now())
            .map_err(AppError::domain)?;
        self.events.update(&event).await?;
        self.catalogue.invalidate_event(id).await;
        tracing::info!("event offline");
        Ok(self.views.event_dto(&event))
    }
}
