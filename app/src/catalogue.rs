//! The buyer's catalogue: events and products read through a bounded in-process
//! cache (moka) in front of the database.
//!
//! Misses for one key are coalesced, so a thousand buyers asking for the same cold
//! product cause one load; unknown ids are cached as `None` for a shorter time, so
//! probing unknown ids does not reach the database either. Admin writes invalidate the
//! entries they touch at once. Each lookup counts in
//! `flash_sale_cache_lookups_total{layer}`: `local` (answered from the cache), `null`
//! (a cached "does not exist"), or `db` (a query was made).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flash_sale_client::{EventDetailDto, EventDto, PageDto, PageQry, ProductDto};
use flash_sale_domain::event::{Event, EventId, EventStatus};
use flash_sale_domain::gateway::{Clock, EventGateway, GatewayError, ProductGateway};
use flash_sale_domain::page::Page;
use flash_sale_domain::product::{Product, ProductId};
use metrics::Counter;
use moka::Expiry;
use moka::future::Cache;

use crate::assembler;
use crate::error::AppError;
use crate::policy::OrderingPolicy;

/// Sizes and lifetimes of the catalogue cache.
#[derive(Debug, Clone)]
pub struct CatalogueSettings {
    /// How long a found entry is served before it is reloaded.
    pub local_ttl: Duration,
    /// How long "does not exist" is remembered.
    pub null_ttl: Duration,
    /// Most entries per kind.
    pub capacity: u64,
}

impl Default for CatalogueSettings {
    fn default() -> Self {
        Self {
            local_ttl: Duration::from_secs(2),
            null_ttl: Duration::from_secs(1),
            capacity: 100_000,
        }
    }
}

/// A product with the units it can still sell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEntry {
    /// The product.
    pub product: Product,
    /// Units still for sale when it was loaded.
    pub available: i64,
}

/// Found entries live `local_ttl`, missing ones `null_ttl`.
struct NullAwareExpiry {
    found: Duration,
    missing: Duration,
}

impl<K, T> Expiry<K, Option<T>> for NullAwareExpiry {
    fn expire_after_create(&self, _: &K, value: &Option<T>, _: Instant) -> Option<Duration> {
        Some(if value.is_some() {
            self.found
        } else {
            self.missing
        })
    }
}

struct LookupCounters {
    local: Counter,
    null: Counter,
    db: Counter,
}

impl LookupCounters {
    fn new() -> Self {
        let counter = |layer: &'static str| metrics::counter!("flash_sale_cache_lookups_total", "layer" => layer);
        Self {
            local: counter("local"),
            null: counter("null"),
            db: counter("db"),
        }
    }

    fn record<T>(&self, loaded: bool, value: Option<&T>) {
        match (loaded, value) {
            (true, _) => self.db.increment(1),
            (false, None) => self.null.increment(1),
            (false, Some(_)) => self.local.increment(1),
        }
    }
}

/// The buyer-facing read side of events and products.
pub struct CatalogueService {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    policy: Arc<OrderingPolicy>,
    event_cache: Cache<EventId, Option<Arc<Event>>>,
    product_cache: Cache<ProductId, Option<Arc<ProductEntry>>>,
    event_products: Cache<EventId, Option<Arc<Vec<ProductEntry>>>>,
    event_pages: Cache<(u32, u32), Arc<Page<Event>>>,
    counters: LookupCounters,
}

fn shared_error(error: &Arc<GatewayError>) -> AppError {
    match &**error {
        GatewayError::Unavailable(why) => AppError::Unavailable(why.clone()),
        GatewayError::NotFound => AppError::NotFound("resource"),
        other => AppError::Internal(anyhow::anyhow!(other.to_string())),
    }
}

impl CatalogueService {
    /// A catalogue over the two gateways.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        clock: Arc<dyn Clock>,
        policy: Arc<OrderingPolicy>,
        settings: &CatalogueSettings,
    ) -> Self {
        let expiry = || NullAwareExpiry {
            found: settings.local_ttl,
            missing: settings.null_ttl,
        };
        Self {
            events,
            products,
            clock,
            policy,
            event_cache: Cache::builder()
                .name("catalogue.events")
                .max_capacity(settings.capacity)
                .expire_after(expiry())
                .build(),
            product_cache: Cache::builder()
                .name("catalogue.products")
                .max_capacity(settings.capacity)
                .expire_after(expiry())
                .build(),
            event_products: Cache::builder()
                .name("catalogue.event_products")
                .max_capacity(settings.capacity)
                .expire_after(expiry())
                .build(),
            event_pages: Cache::builder()
                .name("catalogue.event_pages")
                .max_capacity(1_000)
                .time_to_live(settings.local_ttl)
                .build(),
            counters: LookupCounters::new(),
        }
    }

    /// The strategy policy the catalogue reports with.
    pub fn policy(&self) -> &Arc<OrderingPolicy> {
        &self.policy
    }

    /// The current time from the catalogue's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The event, cached (also when it does not exist).
    pub async fn event(&self, id: EventId) -> Result<Option<Arc<Event>>, AppError> {
        let mut loaded = false;
        let value = self
            .event_cache
            .try_get_with(id, async {
                loaded = true;
                Ok::<_, GatewayError>(self.events.find(id).await?.map(Arc::new))
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value)
    }

    /// The product with its available units, cached (also when it does not exist).
    pub async fn product(&self, id: ProductId) -> Result<Option<Arc<ProductEntry>>, AppError> {
        let mut loaded = false;
        let value = self
            .product_cache
            .try_get_with(id, async {
                loaded = true;
                let Some(product) = self.products.find(id).await? else {
                    return Ok::<_, GatewayError>(None);
                };
                let available = self.products.available(&[id]).await?;
                Ok(Some(Arc::new(ProductEntry {
                    available: available.get(&id).copied().unwrap_or(0),
                    product,
                })))
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value)
    }

    async fn products_of(&self, id: EventId) -> Result<Arc<Vec<ProductEntry>>, AppError> {
        let mut loaded = false;
        let value = self
            .event_products
            .try_get_with(id, async {
                loaded = true;
                let products = self.products.list_for_event(id).await?;
                let ids: Vec<ProductId> = products.iter().map(|p| p.id).collect();
                let available = self.products.available(&ids).await?;
                let entries = products
                    .into_iter()
                    .map(|product| ProductEntry {
                        available: available.get(&product.id).copied().unwrap_or(0),
                        product,
                    })
                    .collect();
                Ok::<_, GatewayError>(Some(Arc::new(entries)))
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value.unwrap_or_default())
    }

    /// A visible (online) event, or `NotFound`.
    pub async fn visible_event(&self, id: EventId) -> Result<Arc<Event>, AppError> {
        self.event(id)
            .await?
            .filter(|event| event.is_visible())
            .ok_or(AppError::NotFound("event"))
    }

    /// `GET /events`: online events, newest first.
    #[tracing::instrument(skip_all)]
    pub async fn events_page(&self, qry: PageQry) -> Result<PageDto<EventDto>, AppError> {
        let request = assembler::page_request(qry.page, qry.page_size);
        let mut loaded = false;
        let page = self
            .event_pages
            .try_get_with((request.page, request.page_size), async {
                loaded = true;
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

    /// `GET /products/{id}`: a product whose event is online.
    #[tracing::instrument(skip_all, fields(product.id = id))]
    pub async fn product_detail(&self, id: i64) -> Result<ProductDto, AppError> {
        let id = ProductId(id);
        let entry = self
            .product(id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        self.visible_event(entry.product.event_id)
            .await
            .map_err(|_| AppError::NotFound("product"))?;
        Ok(assembler::product_dto(&entry.product, entry.available))
    }

    /// Drops everything cached about an event (and the event lists).
    pub async fn invalidate_event(&self, id: EventId) {
        self.event_cache.invalidate(&id).await;
        self.event_products.invalidate(&id).await;
        self.event_pages.invalidate_all();
    }

    /// Drops everything cached about a product (and its event's product list).
    pub async fn invalidate_product(&self, id: ProductId, event_id: EventId) {
        self.product_cache.invalidate(&id).await;
        self.event_products.invalidate(&event_id).await;
    }
}
