//! Admin use cases on products: create, edit, publish, move stock, read the ledger.

use std::sync::Arc;

use flash_sale_client::{
    InventoryDto, LedgerEntryDto, PageDto, PageQry, ProductCreateCmd, ProductDto, ProductPatchCmd,
    ReconcileDto,
};
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{Clock, ProductGateway};
use flash_sale_domain::ledger::LedgerReason;
use flash_sale_domain::product::{
    NewProduct, ProductChanges, ProductError, ProductId, ProductSpec, ProductStatus,
};
use flash_sale_domain::stock::{BucketDelta, StockBucket, plan_addition, plan_removal};

use crate::assembler;
use crate::catalogue::CatalogueService;
use crate::error::AppError;
use crate::event::AdminViews;
use crate::ports::Ports;
use crate::stock::StockService;

/// `POST /admin/events/{id}/products`: a new, online product with its stock split
/// into buckets.
pub struct ProductCreateCmdExe {
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
}

impl ProductCreateCmdExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews, catalogue: Arc<CatalogueService>) -> Self {
        Self {
            products: ports.products.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
        }
    }

    /// Checks and stores the product. Without `bucket_count` it gets one bucket, or
    /// `ordering.bucket_count` when its event sells with `buckets`.
    #[tracing::instrument(skip_all, fields(event.id = event_id))]
    pub async fn execute(
        &self,
        event_id: i64,
        cmd: ProductCreateCmd,
    ) -> Result<ProductDto, AppError> {
        let event_id = EventId(event_id);
        let event = self.views.event(event_id).await?;
        let bucket_count = cmd.bucket_count.unwrap_or_else(|| {
            if self.views.effective(&event).splits_stock() {
                self.catalogue.policy().config().bucket_count
            } else {
                1
            }
        });
        let new = NewProduct::new(
            event_id,
            &ProductSpec {
                title: &cmd.title,
                description: cmd.description.as_deref(),
                original_price: cmd.original_price,
                flash_price: cmd.flash_price,
                stock: cmd.stock,
                per_user_limit: cmd.per_user_limit.unwrap_or(1),
                bucket_count,
            },
        )?;
        let product = self.products.insert(new, self.clock.now()).await?;
        self.catalogue.invalidate_event(event_id).await;
        tracing::info!(product.id = product.id.0, "product created");
        self.views.product_dto(&product).await
    }
}

/// `PATCH /admin/products/{id}`: allowed in any state; new orders see the change.
pub struct ProductPatchCmdExe {
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
}

impl ProductPatchCmdExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews, catalogue: Arc<CatalogueService>) -> Self {
        Self {
            products: ports.products.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
        }
    }

    /// Applies the changes.
    #[tracing::instrument(skip_all, fields(product.id = id))]
    pub async fn execute(&self, id: i64, cmd: ProductPatchCmd) -> Result<ProductDto, AppError> {
        let id = ProductId(id);
        let mut product = self.views.product(id).await?;
        let changes = ProductChanges {
            title: cmd.title,
            description: cmd.description,
            original_price: cmd.original_price,
            flash_price: cmd.flash_price,
            per_user_limit: cmd.per_user_limit,
        };
        product
            .edit(&changes, self.clock.now())
            .map_err(AppError::domain)?;
        self.products.update(&product).await?;
        self.catalogue
            .invalidate_product(id, product.event_id)
            .await;
        self.views.product_dto(&product).await
    }
}

/// `POST /admin/products/{id}/online` and `/offline`.
pub struct ProductStatusCmdExe {
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
}

impl ProductStatusCmdExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports, views: AdminViews, catalogue: Arc<CatalogueService>) -> Self {
        Self {
            products: ports.products.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
        }
    }

    /// Puts the product on sale (idempotent).
    pub async fn online(&self, id: i64) -> Result<ProductDto, AppError> {
        self.set(ProductId(id), ProductStatus::Online).await
    }

    /// Takes the product off sale (idempotent).
    pub async fn offline(&self, id: i64) -> Result<ProductDto, AppError> {
        self.set(ProductId(id), ProductStatus::Offline).await
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0, product.status = status.as_str()))]
    async fn set(&self, id: ProductId, status: ProductStatus) -> Result<ProductDto, AppError> {
        let mut product = self.views.product(id).await?;
        product.set_status(status, self.clock.now());
        self.products.update(&product).await?;
        self.catalogue
            .invalidate_product(id, product.event_id)
            .await;
        self.views.product_dto(&product).await
    }
}

/// `POST /admin/products/{id}/stock`: adds units, or removes unsold ones, keeping the
/// stock ledger and the database in step while the sale is live.
pub struct ProductStockCmdExe {
    products: Arc<dyn ProductGateway>,
    clock: Arc<dyn Clock>,
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
}

/// How often a removal is re-planned when orders took units between plan and write.
const STOCK_ATTEMPTS: usize = 5;

fn as_buckets(id: ProductId, available: &[i64]) -> Vec<StockBucket> {
    available
        .iter()
        .zip(0_u32..)
        .map(|(&available, bucket_no)| StockBucket {
            product_id: id,
            bucket_no,
            total: available,
            available,
        })
        .collect()
}

impl ProductStockCmdExe {
    /// Built over `ports`.
    pub fn new(
        ports: &Ports,
        views: AdminViews,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            products: ports.products.clone(),
            clock: ports.clock.clone(),
            views,
            catalogue,
            stock,
        }
    }

    /// Moves `delta` units: positive spreads over the emptiest buckets, negative takes
    /// from the fullest and only what is unsold — not sold, not reserved — else
    /// `INVALID_STATE`.
    #[tracing::instrument(skip_all, fields(product.id = id, stock.delta = delta))]
    pub async fn execute(&self, id: i64, delta: i64) -> Result<ProductDto, AppError> {
        let id = ProductId(id);
        if delta == 0 {
            return Err(
                flash_sale_domain::ValidationErrors::single("delta", "must not be zero").into(),
            );
        }
        self.views.product(id).await?;
        let write = |plan: Vec<BucketDelta>, reason: LedgerReason| async move {
            self.products
                .adjust_stock(id, &plan, reason, "admin_stock_change", self.clock.now())
                .await
                .map_err(AppError::from)
        };
        let product = if delta > 0 {
            let view = self.stock.view(id).await?;
            let plan = plan_addition(&as_buckets(id, &view.available), delta);
            self.stock
                .add_units(id, &plan, write(plan.clone(), LedgerReason::StockAdded))
                .await?
        } else {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let view = self.stock.view(id).await?;
                let plan = plan_removal(&as_buckets(id, &view.available), -delta)
                    .map_err(AppError::domain)?;
                if let Some(product) = self
                    .stock
                    .remove_units(id, &plan, write(plan.clone(), LedgerReason::StockRemoved))
                    .await?
                {
                    break product;
                }
                if attempt >= STOCK_ATTEMPTS {
                    return Err(AppError::domain(ProductError::NotEnoughUnsold {
                        requested: -delta,
                        unsold: view.available.iter().sum(),
                    }));
                }
            }
        };
        self.catalogue
            .invalidate_product(id, product.event_id)
            .await;
        tracing::info!("stock changed");
        self.views.product_dto(&product).await
    }
}

/// `POST /admin/products/{id}/buckets`: re-arranges a product's buckets live.
pub struct ProductBucketsCmdExe {
    views: AdminViews,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
}

impl ProductBucketsCmdExe {
    /// Built over `ports`.
    pub fn new(
        views: AdminViews,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
    ) -> Self {
        Self {
            views,
            catalogue,
            stock,
        }
    }

    /// Consolidates the unsold units and re-splits them over `count` buckets.
    #[tracing::instrument(skip_all, fields(product.id = id, buckets = count))]
    pub async fn execute(&self, id: i64, count: u32) -> Result<ProductDto, AppError> {
        let id = ProductId(id);
        if !(1..=1024).contains(&count) {
            return Err(flash_sale_domain::ValidationErrors::single(
                "count",
                "must be between 1 and 1024",
            )
            .into());
        }
        let before = self.views.product(id).await?;
        let product = self.stock.rebucket(id, count).await?;
        self.catalogue
            .invalidate_product(id, product.event_id)
            .await;
        tracing::info!(from = before.bucket_count.get(), "buckets re-arranged");
        self.views.product_dto(&product).await
    }
}

/// `GET /admin/products/{id}/inventory`.
pub struct InventoryQryExe {
    stock: Arc<StockService>,
}

impl InventoryQryExe {
    /// Built over the stock service.
    pub fn new(stock: Arc<StockService>) -> Self {
        Self { stock }
    }

    /// The database and stock-ledger views side by side.
    #[tracing::instrument(skip_all, fields(product.id = id))]
    pub async fn execute(&self, id: i64) -> Result<InventoryDto, AppError> {
        self.stock.inventory(ProductId(id)).await
    }
}

/// `POST /admin/products/{id}/reconcile`.
pub struct ReconcileCmdExe {
    stock: Arc<StockService>,
}

impl ReconcileCmdExe {
    /// Built over the stock service.
    pub fn new(stock: Arc<StockService>) -> Self {
        Self { stock }
    }

    /// Compares the stock ledger with the database and rewrites the ledger from the
    /// database (while the product is suspended and idle).
    #[tracing::instrument(skip_all, fields(product.id = id))]
    pub async fn execute(&self, id: i64) -> Result<ReconcileDto, AppError> {
        let id = ProductId(id);
        // In the ledger first (404 when there is no such product), so that the drift
        // measured before the rewrite is the ledger's, not an empty one.
        self.stock.ensure_loaded(id).await?;
        let (drift_before, after) = self.stock.reload(id).await?;
        Ok(ReconcileDto {
            drift_before,
            repaired: drift_before != 0,
            consistent: after.consistent,
        })
    }
}

/// `GET /admin/products/{id}/ledger`: the product's ledger rows, oldest first.
pub struct LedgerQryExe {
    products: Arc<dyn ProductGateway>,
}

impl LedgerQryExe {
    /// Built over `ports`.
    pub fn new(ports: &Ports) -> Self {
        Self {
            products: ports.products.clone(),
        }
    }

    /// One page of rows.
    #[tracing::instrument(skip_all, fields(product.id = id))]
    pub async fn execute(
        &self,
        id: i64,
        qry: PageQry,
    ) -> Result<PageDto<LedgerEntryDto>, AppError> {
        let id = ProductId(id);
        if self.products.find(id).await?.is_none() {
            return Err(AppError::NotFound("product"));
        }
        let request = assembler::page_request(qry.page, qry.page_size);
        let page = self.products.ledger(id, request).await?;
        Ok(assembler::page_dto(
            page,
            request,
            assembler::ledger_entry_dto,
        ))
    }
}
