//! [`ProductGateway`] on sea-orm: products, their stock buckets and the ledger.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{GatewayError, ProductGateway, Relay, StockStateSink};
use flash_sale_domain::ledger::{LedgerEntry, LedgerReason};
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::product::{
    BucketCount, NewProduct, PerUserLimit, Pricing, Product, ProductError, ProductId, ProductStatus,
};
use flash_sale_domain::stock::{BucketDelta, StockBucket, split_evenly};
use flash_sale_domain::text::{Description, Title};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, NotSet,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Unchanged,
};

use super::entity::{inventory_ledger, product, stock_bucket};
use super::event_gateway::corrupt;
use super::{Database, WriteTx, db_error};

/// Products in `products`, their buckets in `stock_buckets`, and `inventory_ledger`.
#[derive(Debug, Clone)]
pub struct SeaOrmProductGateway {
    db: Database,
}

impl SeaOrmProductGateway {
    /// A gateway over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

pub(crate) fn to_domain(row: &product::Model) -> Result<Product, GatewayError> {
    let u32_of = |what: &str, v: i32| u32::try_from(v).map_err(|_| corrupt(what, &v.to_string()));
    Ok(Product {
        id: ProductId(row.id),
        event_id: EventId(row.event_id),
        title: Title::parse("title", &row.title).map_err(|_| corrupt("title", &row.title))?,
        description: Description::parse("description", &row.description)
            .map_err(|_| corrupt("description", "…"))?,
        pricing: Pricing::new(row.original_price, row.flash_price)
            .map_err(|_| corrupt("pricing", &row.flash_price.to_string()))?,
        stock_total: row.stock_total,
        per_user_limit: PerUserLimit::new(u32_of("per_user_limit", row.per_user_limit)?)
            .map_err(|_| corrupt("per_user_limit", &row.per_user_limit.to_string()))?,
        bucket_count: BucketCount::new("bucket_count", u32_of("bucket_count", row.bucket_count)?)
            .map_err(|_| corrupt("bucket_count", &row.bucket_count.to_string()))?,
        status: ProductStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn bucket_to_domain(row: &stock_bucket::Model) -> StockBucket {
    StockBucket {
        product_id: ProductId(row.product_id),
        bucket_no: u32::try_from(row.bucket_no).unwrap_or_default(),
        total: row.total,
        available: row.available,
    }
}

fn ledger_to_domain(row: inventory_ledger::Model) -> Result<LedgerEntry, GatewayError> {
    Ok(LedgerEntry {
        id: row.id,
        product_id: ProductId(row.product_id),
        bucket_no: u32::try_from(row.bucket_no).unwrap_or_default(),
        delta: row.delta,
        reason: LedgerReason::parse(&row.reason).ok_or_else(|| corrupt("reason", &row.reason))?,
        reference: row.reference,
        created_at: row.created_at,
    })
}

/// One ledger row to append.
pub(crate) fn ledger_row(
    product_id: ProductId,
    bucket_no: u32,
    delta: i64,
    reason: LedgerReason,
    reference: &str,
    now: DateTime<Utc>,
) -> inventory_ledger::ActiveModel {
    inventory_ledger::ActiveModel {
        id: NotSet,
        product_id: Set(product_id.0),
        bucket_no: Set(i32::try_from(bucket_no).unwrap_or(i32::MAX)),
        delta: Set(delta),
        reason: Set(reason.as_str().to_owned()),
        reference: Set(reference.to_owned()),
        created_at: Set(now),
    }
}

/// Moves `delta` units in or out of one bucket (`total` and `available` together); a
/// removal only happens when that many are available. Returns whether it happened.
pub(crate) async fn move_bucket_stock(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    bucket_no: u32,
    delta: i64,
) -> Result<bool, DbErr> {
    let mut update = stock_bucket::Entity::update_many()
        .col_expr(
            stock_bucket::Column::Total,
            Expr::col(stock_bucket::Column::Total).add(delta),
        )
        .col_expr(
            stock_bucket::Column::Available,
            Expr::col(stock_bucket::Column::Available).add(delta),
        )
        .filter(stock_bucket::Column::ProductId.eq(product_id.0))
        .filter(stock_bucket::Column::BucketNo.eq(i32::try_from(bucket_no).unwrap_or(i32::MAX)));
    if delta < 0 {
        update = update.filter(stock_bucket::Column::Available.gte(-delta));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

#[derive(Debug, FromQueryResult)]
struct AvailableRow {
    product_id: i64,
    available: Option<i64>,
}

impl SeaOrmProductGateway {
    async fn insert_in(
        tx: &WriteTx,
        new: &NewProduct,
        now: DateTime<Utc>,
    ) -> Result<product::Model, DbErr> {
        let row = product::ActiveModel {
            id: NotSet,
            event_id: Set(new.event_id.0),
            title: Set(new.title.as_str().to_owned()),
            description: Set(new.description.as_str().to_owned()),
            original_price: Set(new.pricing.original()),
            flash_price: Set(new.pricing.flash()),
            stock_total: Set(new.stock),
            per_user_limit: Set(i32::try_from(new.per_user_limit.get()).unwrap_or(i32::MAX)),
            bucket_count: Set(i32::try_from(new.bucket_count.get()).unwrap_or(i32::MAX)),
            status: Set(ProductStatus::Online.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&**tx)
        .await?;
        let split = split_evenly(new.stock, new.bucket_count.get());
        let buckets = split
            .iter()
            .zip(0_i32..)
            .map(|(&units, no)| stock_bucket::ActiveModel {
                product_id: Set(row.id),
                bucket_no: Set(no),
                total: Set(units),
                available: Set(units),
            });
        stock_bucket::Entity::insert_many(buckets)
            .exec(&**tx)
            .await?;
        let ledger = split
            .iter()
            .zip(0_u32..)
            .filter(|&(&units, _)| units > 0)
            .map(|(&units, no)| {
                ledger_row(
                    ProductId(row.id),
                    no,
                    units,
                    LedgerReason::StockAdded,
                    "product_created",
                    now,
                )
            });
        inventory_ledger::Entity::insert_many(ledger)
            .exec(&**tx)
            .await?;
        Ok(row)
    }

    /// `None` when a bucket could not give up its units (the caller rolls back).
    async fn adjust_in(
        tx: &WriteTx,
        id: ProductId,
        deltas: &[BucketDelta],
        reason: LedgerReason,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<product::Model>, DbErr> {
        for d in deltas {
            if !move_bucket_stock(&**tx, id, d.bucket_no, d.delta).await? {
                return Ok(None);
            }
        }
        let sum: i64 = deltas.iter().map(|d| d.delta).sum();
        product::Entity::update_many()
            .col_expr(
                product::Column::StockTotal,
                Expr::col(product::Column::StockTotal).add(sum),
            )
            .col_expr(product::Column::UpdatedAt, Expr::value(now))
            .filter(product::Column::Id.eq(id.0))
            .exec(&**tx)
            .await?;
        let rows = deltas
            .iter()
            .map(|d| ledger_row(id, d.bucket_no, d.delta, reason, reference, now));
        inventory_ledger::Entity::insert_many(rows)
            .exec(&**tx)
            .await?;
        product::Entity::find_by_id(id.0).one(&**tx).await
    }
}

#[async_trait]
impl ProductGateway for SeaOrmProductGateway {
    #[tracing::instrument(skip_all, fields(product.id = id.0, ?relay))]
    async fn relay<'s>(
        &self,
        id: ProductId,
        relay: Relay,
        now: DateTime<Utc>,
        sink: &'s (dyn StockStateSink + 's),
    ) -> Result<Product, GatewayError> {
        super::relay::relay(&self.db, id, relay, now, sink).await
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn stock_snapshot(
        &self,
        id: ProductId,
        tokens: &[String],
    ) -> Result<(Vec<StockBucket>, HashSet<String>), GatewayError> {
        super::snapshot::stock_snapshot(&self.db, id, tokens).await
    }

    #[tracing::instrument(skip_all, fields(event.id = new.event_id.0))]
    async fn insert(&self, new: NewProduct, now: DateTime<Utc>) -> Result<Product, GatewayError> {
        let tx = self.db.begin_write().await.map_err(db_error)?;
        let result = Self::insert_in(&tx, &new, now).await;
        let row = tx.finish(result, |_| true).await.map_err(db_error)?;
        to_domain(&row)
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn find(&self, id: ProductId) -> Result<Option<Product>, GatewayError> {
        product::Entity::find_by_id(id.0)
            .one(self.db.connection())
            .await
            .map_err(db_error)?
            .map(|row| to_domain(&row))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(event.id = event_id.0))]
    async fn list_for_event(&self, event_id: EventId) -> Result<Vec<Product>, GatewayError> {
        product::Entity::find()
            .filter(product::Column::EventId.eq(event_id.0))
            .order_by_asc(product::Column::Id)
            .all(self.db.connection())
            .await
            .map_err(db_error)?
            .iter()
            .map(to_domain)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(event.id = event_id.0))]
    async fn count_for_event(&self, event_id: EventId) -> Result<u64, GatewayError> {
        product::Entity::find()
            .filter(product::Column::EventId.eq(event_id.0))
            .count(self.db.connection())
            .await
            .map_err(db_error)
    }

    #[tracing::instrument(skip_all, fields(product.id = product.id.0))]
    async fn update(&self, product: &Product) -> Result<(), GatewayError> {
        let row = product::ActiveModel {
            id: Unchanged(product.id.0),
            event_id: NotSet,
            title: Set(product.title.as_str().to_owned()),
            description: Set(product.description.as_str().to_owned()),
            original_price: Set(product.pricing.original()),
            flash_price: Set(product.pricing.flash()),
            stock_total: NotSet,
            per_user_limit: Set(i32::try_from(product.per_user_limit.get()).unwrap_or(i32::MAX)),
            bucket_count: NotSet,
            status: Set(product.status.as_str().to_owned()),
            created_at: NotSet,
            updated_at: Set(product.updated_at),
        };
        let tx = self.db.begin_write().await.map_err(db_error)?;
        let result = product::Entity::update_many()
            .set(row)
            .filter(product::Column::Id.eq(product.id.0))
            .exec(&*tx)
            .await;
        let result = tx
            .finish(result, |r| r.rows_affected == 1)
            .await
            .map_err(db_error)?;
        if result.rows_affected == 0 {
            return Err(GatewayError::NotFound);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn buckets(&self, id: ProductId) -> Result<Vec<StockBucket>, GatewayError> {
        let rows = stock_bucket::Entity::find()
            .filter(stock_bucket::Column::ProductId.eq(id.0))
            .order_by_asc(stock_bucket::Column::BucketNo)
            .all(self.db.connection())
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(bucket_to_domain).collect())
    }

    #[tracing::instrument(skip_all)]
    async fn available(&self, ids: &[ProductId]) -> Result<HashMap<ProductId, i64>, GatewayError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = stock_bucket::Entity::find()
            .select_only()
            .column(stock_bucket::Column::ProductId)
            .column_as(self.db.sum_i64("available"), "available")
            .filter(stock_bucket::Column::ProductId.is_in(ids.iter().map(|id| id.0)))
            .group_by(stock_bucket::Column::ProductId)
            .into_model::<AvailableRow>()
            .all(self.db.connection())
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (ProductId(row.product_id), row.available.unwrap_or(0)))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn adjust_stock(
        &self,
        id: ProductId,
        deltas: &[BucketDelta],
        reason: LedgerReason,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<Product, GatewayError> {
        let tx = self.db.begin_write().await.map_err(db_error)?;
        let result = Self::adjust_in(&tx, id, deltas, reason, reference, now).await;
        match tx.finish(result, Option::is_some).await.map_err(db_error)? {
            Some(row) => to_domain(&row),
            None => {
                let unsold = self.buckets(id).await?.iter().map(|b| b.available).sum();
                Err(GatewayError::rejected(ProductError::NotEnoughUnsold {
                    requested: -deltas.iter().map(|d| d.delta).sum::<i64>(),
                    unsold,
                }))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn ledger(
        &self,
        id: ProductId,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, GatewayError> {
        let query = inventory_ledger::Entity::find()
            .filter(inventory_ledger::Column::ProductId.eq(id.0))
            .order_by_asc(inventory_ledger::Column::Id);
        self.db.page(query, page, ledger_to_domain).await
    }

    #[tracing::instrument(skip_all, fields(product.id = id.0))]
    async fn ledger_sum(&self, id: ProductId) -> Result<i64, GatewayError> {
        let sum: Option<Option<i64>> = inventory_ledger::Entity::find()
            .select_only()
            .column_as(self.db.sum_i64("delta"), "sum")
            .filter(inventory_ledger::Column::ProductId.eq(id.0))
            .into_tuple()
            .one(self.db.connection())
            .await
            .map_err(db_error)?;
        Ok(sum.flatten().unwrap_or(0))
    }
}
