//! The admin's reads of events.

use std::sync::Arc;

use flash_sale_client::{EventDetailDto, EventDto, EventListQry, PageDto};
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::EventGateway;

use super::AdminViews;
use crate::assembler;
use crate::error::AppError;
use crate::ports::Ports;

/// `GET /admin/events?status=&page=&page_size=`: every event, newest first.
pub struct EventListQryExe {
    events: Arc<dyn EventGateway>,
    views: AdminViews,
}

impl EventListQryExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews) -> Self {
        Self {
            events: ports.events.clone(),
            views,
        }
    }

    /// One page.
    #[tracing::instrument(skip_all)]
    pub async fn execute(&self, qry: EventListQry) -> Result<PageDto<EventDto>, AppError> {
        let request = assembler::page_request(qry.page, qry.page_size);
        let page = self
            .events
            .list(qry.status.map(assembler::event_status), request)
            .await?;
        Ok(assembler::page_dto(page, request, |e| {
            self.views.event_dto(&e)
        }))
    }
}

/// `GET /admin/events/{id}`: the event with all its products.
pub struct EventGetQryExe {
    views: AdminViews,
}

impl EventGetQryExe {
    /// Built over `ports`.
    pub fn new(_ports: &Ports, views: AdminViews) -> Self {
        Self { views }
    }

    /// The event and its products.
    #[tracing::instrument(skip_all, fields(event.id = id))]
    pub async fn execute(&self, id: i64) -> Result<EventDetailDto, AppError> {
        let id = EventId(id);
        let event = self.views.event(id).await?;
        let products = self.views.product_dtos(id).await?;
        Ok(EventDetailDto {
            event: self.views.event_dto(&event),
            products,
        })
    }
}
