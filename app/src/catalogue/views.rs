//! What buyers read through the catalogue: online events (a page, one with its online
//! products) and one product, each built from the cached entries.

use std::sync::Arc;

use bytes::Bytes;
use flash_sale_client::{EventDetailDto, EventDto, PageDto, PageQry};
use flash_sale_domain::event::{Event, EventId, EventStatus};
use flash_sale_domain::gateway::GatewayError;
use flash_sale_domain::page::Page;
use flash_sale_domain::product::ProductId;

use super::{CatalogueService, Layer, shared_error};
use crate::assembler;
use crate::error::AppError;

impl CatalogueService {
    /// A visible (online) event, or `NotFound`.
    pub async fn visible_event(&self, id: EventId) -> Result<Arc<Event>, AppError> {
        self.event(id)
            .await?
            .filter(|event| event.is_visible())
            .ok_or(AppError::NotFound("event"))
    }

    /// `GET /events`: online events, newest first (in-process level only, refreshed
    /// every `local_ttl`).
    #[tracing::instrument(skip_all)]
    pub async fn events_page(&self, qry: PageQry) -> Result<PageDto<EventDto>, AppError> {
        let request = assembler::page_request(qry.page, qry.page_size);
        let mut loaded = None;
        let page = self
            .event_pages
            .try_get_with((request.page, request.page_size), async {
                loaded = Some(Layer::Db);
                Ok::<_, GatewayError>(Arc::new(
                    self.events.list(Some(EventStatus::Online), request).await?,
                ))
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, Some(&()));
        let page = Page {
            items: page.items.clone(),
            total: page.total,
        };
        Ok(assembler::page_dto(page, request, |e| {
            assembler::event_dto(&e, self.policy.effective(&e))
        }))
    }

    /// `GET /events/{id}`: an online event with its online products.
    #[tracing::instrument(skip_all, fields(event.id = id))]
    pub async fn event_detail(&self, id: i64) -> Result<EventDetailDto, AppError> {
        let id = EventId(id);
        let event = self.visible_event(id).await?;
        let products = self.products_of(id).await?;
        Ok(EventDetailDto {
            event: assembler::event_dto(&event, self.policy.effective(&event)),
            products: products
                .iter()
                .filter(|entry| entry.product.is_online())
                .map(|entry| assembler::product_dto(&entry.product, entry.available))
                .collect(),
        })
    }

    /// `GET /products/{id}`: a product whose event is online, as JSON (a
    /// `ProductDto`), serialised once per cached entry.
    pub async fn product_body(&self, id: i64) -> Result<Bytes, AppError> {
        let id = ProductId(id);
        let entry = self
            .product(id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        self.visible_event(entry.product.event_id)
            .await
            .map_err(|_| AppError::NotFound("product"))?;
        entry.body()
    }
}
