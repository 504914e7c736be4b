//! Wiring: the ports the application is given, its settings, and every executor built
//! from them once.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_domain::gateway::{Clock, EventGateway, ProductGateway};

use crate::catalogue::{CatalogueService, CatalogueSettings};
use crate::event::{
    EventCreateCmdExe, EventGetQryExe, EventListQryExe, EventStatusCmdExe, EventUpdateCmdExe,
};
use crate::policy::OrderingPolicy;
use crate::product::{
    LedgerQryExe, ProductCreateCmdExe, ProductStatusCmdExe, ProductStockCmdExe, ProductUpdateCmdExe,
};

/// The gateways the application runs on; `start` picks the implementations.
#[derive(Clone)]
pub struct Ports {
    /// Events.
    pub events: Arc<dyn EventGateway>,
    /// Products, stock buckets and the ledger.
    pub products: Arc<dyn ProductGateway>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

/// Application settings (a slice of the service's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long an unpaid order holds its units.
    pub payment_timeout: Duration,
    /// The catalogue cache.
    pub catalogue: CatalogueSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            payment_timeout: Duration::from_mins(15),
            catalogue: CatalogueSettings::default(),
        }
    }
}

/// Every executor, built once and shared by the adapters.
pub struct Executors {
    /// `POST /admin/events`.
    pub event_create: EventCreateCmdExe,
    /// `PATCH /admin/events/{id}`.
    pub event_update: EventUpdateCmdExe,
    /// `POST /admin/events/{id}/online|offline`.
    pub event_status: EventStatusCmdExe,
    /// `GET /admin/events`.
    pub event_list: EventListQryExe,
    /// `GET /admin/events/{id}`.
    pub event_get: EventGetQryExe,
    /// `POST /admin/events/{id}/products`.
    pub product_create: ProductCreateCmdExe,
    /// `PATCH /admin/products/{id}`.
    pub product_update: ProductUpdateCmdExe,
    /// `POST /admin/products/{id}/online|offline`.
    pub product_status: ProductStatusCmdExe,
    /// `POST /admin/products/{id}/stock`.
    pub product_stock: ProductStockCmdExe,
    /// `GET /admin/products/{id}/ledger`.
    pub ledger: LedgerQryExe,
    /// The buyer's catalogue reads.
    pub catalogue: Arc<CatalogueService>,
    /// The strategy policy (reloadable).
    pub policy: Arc<OrderingPolicy>,
}

impl Executors {
    /// Builds every executor over `ports`.
    pub fn new(ports: &Ports, settings: &Settings, policy: Arc<OrderingPolicy>) -> Self {
        let catalogue = Arc::new(CatalogueService::new(
            ports.events.clone(),
            ports.products.clone(),
            ports.clock.clone(),
            policy.clone(),
            &settings.catalogue,
        ));
        let admin = crate::event::AdminViews::new(ports, policy.clone());
        Self {
            event_create: EventCreateCmdExe::new(ports, admin.clone()),
            event_update: EventUpdateCmdExe::new(ports, admin.clone(), catalogue.clone()),
            event_status: EventStatusCmdExe::new(ports, admin.clone(), catalogue.clone()),
            event_list: EventListQryExe::new(ports, admin.clone()),
            event_get: EventGetQryExe::new(ports, admin.clone()),
            product_create: ProductCreateCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_update: ProductUpdateCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_status: ProductStatusCmdExe::new(ports, admin.clone(), catalogue.clone()),
            product_stock: ProductStockCmdExe::new(ports, admin, catalogue.clone()),
            ledger: LedgerQryExe::new(ports),
            catalogue,
            policy,
        }
    }
}
