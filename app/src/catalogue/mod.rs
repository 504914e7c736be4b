//! The buyer's catalogue: events and products read through two cache levels in front
//! of the database — a bounded in-process cache (moka, a few seconds) and, when
//! configured, a cache shared by every instance (Redis, a minute with jitter).
//!
//! - **Breakdown**: misses for one key are coalesced in process, and across instances
//!   one loader rebuilds the shared entry under a lock while the others wait briefly
//!   for it; nobody stampedes the database.
//! - **Penetration**: unknown ids are cached as "does not exist" for a shorter time,
//!   at both levels.
//! - **Invalidation**: admin writes drop the entries they touch at once, delete the
//!   shared entry and broadcast a notice so every instance drops its local copy.
//!
//! Each lookup counts in `flash_sale_cache_lookups_total{layer}`: `local`, `redis`,
//! `null` (a cached "does not exist"), or `db` (a query was made).

mod shared;
mod snapshot;
mod views;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flash_sale_domain::Chain;
use flash_sale_domain::event::{Event, EventId};
use flash_sale_domain::gateway::{
    Clock, EventGateway, GatewayError, LockGateway, Notice, NoticeBus, ProductGateway, SharedCache,
};
use flash_sale_domain::page::Page;
use flash_sale_domain::product::{Product, ProductId};
use metrics::Counter;
use moka::Expiry;
use moka::future::Cache;

pub use shared::Layer;
use shared::SharedLevel;
use snapshot::{EventSnapshot, ProductSnapshot};

use crate::error::{AppError, Cause};
use crate::policy::OrderingPolicy;

/// Sizes and lifetimes of the catalogue cache.
#[derive(Debug, Clone)]
pub struct CatalogueSettings {
    /// How long the in-process level serves a found entry.
    pub local_ttl: Duration,
    /// How long "does not exist" is remembered (both levels).
    pub null_ttl: Duration,
    /// How long the shared level keeps a found entry (plus up to 20% jitter).
    pub shared_ttl: Duration,
    /// How long a loader may hold the rebuild lock of one key.
    pub lock_ttl: Duration,
    /// How long the others wait for that loader before querying themselves.
    pub lock_wait: Duration,
    /// Most entries per kind, in process.
    pub capacity: u64,
}

impl Default for CatalogueSettings {
    fn default() -> Self {
        Self {
            local_ttl: Duration::from_secs(2),
            null_ttl: Duration::from_secs(1),
            shared_ttl: Duration::from_mins(1),
            lock_ttl: Duration::from_secs(2),
            lock_wait: Duration::from_millis(500),
            capacity: 100_000,
        }
    }
}

/// A product with the units it can still sell, and what buyers read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEntry {
    /// The product.
    pub product: Product,
    /// Units still for sale when it was loaded.
    pub available: i64,
    /// `GET /products/{id}`'s JSON, serialised on the first read of this entry and
    /// shared by every later one while the entry is cached.
    body: OnceLock<Bytes>,
}

impl ProductEntry {
    /// `product` with `available` units.
    pub fn new(product: Product, available: i64) -> Self {
        Self {
            product,
            available,
            body: OnceLock::new(),
        }
    }

    /// The product as buyers read it (`ProductDto`), as JSON.
    pub fn body(&self) -> Result<Bytes, AppError> {
        if let Some(body) = self.body.get() {
            return Ok(body.clone());
        }
        let dto = crate::assembler::product_dto(&self.product, self.available);
        let body = Bytes::from(
            serde_json::to_vec(&dto).map_err(|e| AppError::Internal(anyhow::Error::new(e)))?,
        );
        Ok(self.body.get_or_init(|| body).clone())
    }
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
    redis: Counter,
    null: Counter,
    db: Counter,
}

impl LookupCounters {
    fn new() -> Self {
        let counter = |layer: &'static str| metrics::counter!("flash_sale_cache_lookups_total", "layer" => layer);
        Self {
            local: counter("local"),
            redis: counter("redis"),
            null: counter("null"),
            db: counter("db"),
        }
    }

    /// Counts a lookup: `loaded` is the layer that answered a miss of the local
    /// level, `None` when the local level answered.
    fn record<T>(&self, loaded: Option<Layer>, value: Option<&T>) {
        match (loaded, value) {
            (Some(Layer::Db), _) => self.db.increment(1),
            (_, None) => self.null.increment(1),
            (Some(Layer::Shared), Some(_)) => self.redis.increment(1),
            (None, Some(_)) => self.local.increment(1),
        }
    }
}

/// The buyer-facing read side of events and products.
pub struct CatalogueService {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    policy: Arc<OrderingPolicy>,
    shared: SharedLevel,
    bus: Option<Arc<dyn NoticeBus>>,
    event_cache: Cache<EventId, Option<Arc<Event>>>,
    product_cache: Cache<ProductId, Option<Arc<ProductEntry>>>,
    event_products: Cache<EventId, Option<Arc<Vec<ProductEntry>>>>,
    event_pages: Cache<(u32, u32), Arc<Page<Event>>>,
    counters: LookupCounters,
}

fn shared_error(error: &Arc<GatewayError>) -> AppError {
    match &**error {
        GatewayError::Unavailable(_) => {
            AppError::Unavailable(Cause::with_source("catalogue", Arc::clone(error)))
        }
        GatewayError::NotFound => AppError::NotFound("resource"),
        _ => AppError::Internal(anyhow::Error::new(Arc::clone(error))),
    }
}

fn event_key(id: EventId) -> String {
    format!("{}:event:{}", snapshot::VERSION, id.0)
}

fn product_key(id: ProductId) -> String {
    format!("{}:product:{}", snapshot::VERSION, id.0)
}

fn event_products_key(id: EventId) -> String {
    format!("{}:event_products:{}", snapshot::VERSION, id.0)
}

/// The two cache levels' collaborators, beyond the database gateways.
pub struct CacheBackends {
    /// The shared level; `None` = in-process only (embedded).
    pub shared: Option<Arc<dyn SharedCache>>,
    /// Locks for rebuilding shared entries.
    pub locks: Arc<dyn LockGateway>,
    /// Cross-instance notices; `None` = this instance only.
    pub bus: Option<Arc<dyn NoticeBus>>,
}

impl CatalogueService {
    /// A catalogue over the gateways and cache backends.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        clock: Arc<dyn Clock>,
        policy: Arc<OrderingPolicy>,
        backends: CacheBackends,
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
            shared: SharedLevel::new(backends.shared, backends.locks, settings),
            bus: backends.bus,
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
        let mut loaded = None;
        let value = self
            .event_cache
            .try_get_with(id, async {
                let (snapshot, layer) = self
                    .shared
                    .get_or_load(&event_key(id), || async {
                        let event = self.events.find(id).await?;
                        Ok(event.as_ref().map(EventSnapshot::of))
                    })
                    .await?;
                loaded = Some(layer);
                Ok::<_, GatewayError>(
                    snapshot
                        .as_ref()
                        .and_then(EventSnapshot::event)
                        .map(Arc::new),
                )
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value)
    }

    async fn load_entries(&self, ids: &[ProductId]) -> Result<Vec<ProductSnapshot>, GatewayError> {
        let mut products = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(product) = self.products.find(id).await? {
                products.push(product);
            }
        }
        let available = self.products.available(ids).await?;
        Ok(products
            .iter()
            .map(|p| ProductSnapshot::of(p, available.get(&p.id).copied().unwrap_or(0)))
            .collect())
    }

    /// The product with its available units, cached (also when it does not exist).
    pub async fn product(&self, id: ProductId) -> Result<Option<Arc<ProductEntry>>, AppError> {
        let mut loaded = None;
        let value = self
            .product_cache
            .try_get_with(id, async {
                let (snapshot, layer) = self
                    .shared
                    .get_or_load(&product_key(id), || async {
                        Ok(self.load_entries(&[id]).await?.pop())
                    })
                    .await?;
                loaded = Some(layer);
                Ok::<_, GatewayError>(
                    snapshot
                        .as_ref()
                        .and_then(ProductSnapshot::entry)
                        .map(Arc::new),
                )
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value)
    }

    async fn products_of(&self, id: EventId) -> Result<Arc<Vec<ProductEntry>>, AppError> {
        let mut loaded = None;
        let value = self
            .event_products
            .try_get_with(id, async {
                let (snapshots, layer) = self
                    .shared
                    .get_or_load(&event_products_key(id), || async {
                        let ids: Vec<ProductId> = self
                            .products
                            .list_for_event(id)
                            .await?
                            .iter()
                            .map(|p| p.id)
                            .collect();
                        Ok(Some(self.load_entries(&ids).await?))
                    })
                    .await?;
                loaded = Some(layer);
                let entries: Option<Vec<ProductEntry>> =
                    snapshots.map(|all: Vec<ProductSnapshot>| {
                        all.iter().filter_map(ProductSnapshot::entry).collect()
                    });
                Ok::<_, GatewayError>(entries.map(Arc::new))
            })
            .await
            .map_err(|e| shared_error(&e))?;
        self.counters.record(loaded, value.as_ref());
        Ok(value.unwrap_or_default())
    }

    /// An admin changed an event: drop it here, in the shared level, and everywhere.
    pub async fn invalidate_event(&self, id: EventId) {
        self.forget(Notice::Event(id)).await;
        self.shared
            .delete(&[event_key(id), event_products_key(id)])
            .await;
        self.broadcast(Notice::Event(id)).await;
    }

    /// An admin changed a product (or its stock): drop it here, in the shared level,
    /// and everywhere.
    pub async fn invalidate_product(&self, id: ProductId, event_id: EventId) {
        let notice = Notice::Product { id, event_id };
        self.forget(notice).await;
        self.shared
            .delete(&[product_key(id), event_products_key(event_id)])
            .await;
        self.broadcast(notice).await;
    }

    /// Sends `notice` to every instance (nothing when there is no bus).
    pub async fn broadcast(&self, notice: Notice) {
        if let Some(bus) = &self.bus
            && let Err(e) = bus.publish(notice).await
        {
            tracing::warn!(error = %Chain(&e), "could not broadcast a cache notice; other instances catch up within the local TTL");
        }
    }

    /// Drops this instance's local entries a notice is about.
    pub async fn forget(&self, notice: Notice) {
        match notice {
            Notice::Event(id) => {
                self.event_cache.invalidate(&id).await;
                self.event_products.invalidate(&id).await;
                self.event_pages.invalidate_all();
            }
            Notice::Product { id, event_id } => {
                self.product_cache.invalidate(&id).await;
                self.event_products.invalidate(&event_id).await;
            }
            Notice::SoldOutCleared(_) => {}
        }
    }
}
