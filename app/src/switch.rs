//! Switching strategies by configuration, live (DESIGN §4): a new `ordering.*` is put
//! in force at once, and every online event whose strategy changes has its stock
//! re-laid under the same suspend protocol as a re-arrangement — `buckets` products
//! get `ordering.bucket_count` buckets (one that has several keeps them), `sync` and
//! `async` products go back to one.

use std::sync::Arc;

use flash_sale_domain::Chain;
use flash_sale_domain::Strategy;
use flash_sale_domain::event::EventStatus;
use flash_sale_domain::gateway::{EventGateway, ProductGateway};
use flash_sale_domain::page::PageRequest;
use flash_sale_domain::product::Product;

use crate::catalogue::CatalogueService;
use crate::error::AppError;
use crate::policy::{OrderingConfig, OrderingPolicy};
use crate::stock::StockService;

/// Puts a new ordering configuration in force (config file change, SIGHUP).
pub struct StrategySwitchCmdExe {
    events: Arc<dyn EventGateway>,
    products: Arc<dyn ProductGateway>,
    stock: Arc<StockService>,
    catalogue: Arc<CatalogueService>,
    policy: Arc<OrderingPolicy>,
}

/// The bucket count a product needs under `strategy`, when it differs from its own.
fn layout_for(product: &Product, strategy: Strategy, bucket_count: u32) -> Option<u32> {
    let now = product.bucket_count.get();
    if strategy.splits_stock() {
        (now == 1 && bucket_count > 1).then_some(bucket_count)
    } else {
        (now > 1).then_some(1)
    }
}

impl StrategySwitchCmdExe {
    /// Built from its collaborators.
    pub fn new(
        events: Arc<dyn EventGateway>,
        products: Arc<dyn ProductGateway>,
        stock: Arc<StockService>,
        catalogue: Arc<CatalogueService>,
        policy: Arc<OrderingPolicy>,
    ) -> Self {
        Self {
            events,
            products,
            stock,
            catalogue,
            policy,
        }
    }

    /// Puts `config` in force; returns how many products were re-laid. A product that
    /// cannot be re-laid now (operations in flight) keeps its layout and sells on.
    pub async fn execute(&self, config: OrderingConfig) -> Result<usize, AppError> {
        let before = self.policy.replace(config.clone());
        if *before == config {
            return Ok(0);
        }
        if before.default_strategy != config.default_strategy {
            tracing::info!(from = %before.default_strategy, to = %config.default_strategy, "ordering.default_strategy switched");
        }
        let mut relaid = 0;
        let mut page = 1;
        loop {
            let request = PageRequest {
                page,
                page_size: 100,
            };
            let events = self.events.list(Some(EventStatus::Online), request).await?;
            for event in &events.items {
                let from = OrderingPolicy::resolve(&before, event.id, event.strategy);
                let to = OrderingPolicy::resolve(&config, event.id, event.strategy);
                if from == to {
                    continue;
                }
                tracing::info!(event.id = event.id.0, %from, %to, "event strategy switched");
                for product in self.products.list_for_event(event.id).await? {
                    let Some(count) = layout_for(&product, to, config.bucket_count) else {
                        self.stock.forget_layout(product.id);
                        continue;
                    };
                    match self.stock.rebucket(product.id, count).await {
                        Ok(product) => {
                            self.stock.forget_layout(product.id);
                            self.catalogue
                                .invalidate_product(product.id, product.event_id)
                                .await;
                            relaid += 1;
                        }
                        Err(e) => {
                            tracing::warn!(
                                product.id = product.id.0,
                                error = %Chain(&e),
                                "could not re-lay the stock for the new strategy now; the reconcile job will"
                            );
                            self.stock.want_layout(product.id, count);
                        }
                    }
                }
            }
            if request.offset() + request.limit() >= events.total {
                return Ok(relaid);
            }
            page += 1;
        }
    }
}
