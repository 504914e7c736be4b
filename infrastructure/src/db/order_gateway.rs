//! [`OrderGateway`] on sea-orm: the order, payment and release transactions.
//!
//! Each transaction is guarded by conditional updates so that the database is the
//! final word: a bucket is only decremented when it holds enough, a quota only grows
//! within the limit, a release only happens to a `pending_payment` order (so it
//! happens exactly once), a payment only lands on a pending, unexpired order.
//! Orders are placed through a group committer: concurrent orders share one
//! transaction, and each is answered after its commit.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::EventId;
use flash_sale_domain::gateway::{GatewayError, OrderFilter, OrderGateway, Release};
use flash_sale_domain::order::{
    IdempotencyKey, Order, OrderError, OrderId, OrderStatus, TransactionId,
};
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::product::{PerUserLimit, ProductId};
use flash_sale_domain::{Strategy, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entity::{order, purchase_quota};
use super::error::duplicate_key;
use super::event_gateway::corrupt;
use super::group_commit::Committer;
use super::order_write::{Placed, is_primary_key_violation, place_batch, release_in, with_retries};
use super::stock_rows::i32_of;
use super::{Database, db_error};

type OrderCommitter = Committer<(Order, PerUserLimit), Placed>;

/// Orders in `orders`, with `stock_buckets`, `purchase_quotas` and `inventory_ledger`.
#[derive(Debug, Clone)]
pub struct SeaOrmOrderGateway {
    db: Database,
    /// Started with the first order (it needs the runtime).
    committer: Arc<OnceLock<OrderCommitter>>,
}

impl SeaOrmOrderGateway {
    /// A gateway over `db`.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            committer: Arc::default(),
        }
    }

    fn committer(&self) -> &OrderCommitter {
        self.committer.get_or_init(|| {
            let db = self.db.clone();
            Committer::spawn("orders", move |orders| {
                let db = db.clone();
                async move { place_batch(&db, orders).await }
            })
        })
    }
}

/// The allocation stored as `bucket_no`, `quantity` and `bucket_split`.
pub(super) fn stored_allocation(
    bucket_no: i32,
    quantity: i32,
    split: Option<&str>,
) -> Result<Allocation, GatewayError> {
    let bucket_no = u32::try_from(bucket_no).map_err(|_| corrupt("bucket", "negative"))?;
    let quantity = u32::try_from(quantity).map_err(|_| corrupt("quantity", "negative"))?;
    Allocation::from_stored(bucket_no, quantity, split)
        .ok_or_else(|| corrupt("bucket split", split.unwrap_or("")))
}

pub(super) fn to_domain(row: order::Model) -> Result<Order, GatewayError> {
    let strategy: Strategy = row
        .strategy
        .parse()
        .map_err(|_| corrupt("strategy", &row.strategy))?;
    Ok(Order {
        id: OrderId::parse(&row.id).ok_or_else(|| corrupt("order id", &row.id))?,
        user_id: UserId::parse(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?,
        event_id: EventId(row.event_id),
        product_id: ProductId(row.product_id),
        allocation: stored_allocation(row.bucket_no, row.quantity, row.bucket_split.as_deref())?,
        quantity: u32::try_from(row.quantity).map_err(|_| corrupt("quantity", "negative"))?,
        unit_price: row.unit_price,
        total_price: row.total_price,
        strategy,
        status: OrderStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?,
        idempotency_key: row
            .idempotency_key
            .as_deref()
            .map(|k| IdempotencyKey::parse(k).map_err(|_| corrupt("idempotency key", k)))
            .transpose()?,
        request_fingerprint: row.request_fingerprint,
        placement_id: row.placement_id,
        created_at: row.created_at,
        expires_at: row.expires_at,
        paid_at: row.paid_at,
        transaction_id: row
            .transaction_id
            .as_deref()
            .map(|t| TransactionId::parse(t).map_err(|_| corrupt("transaction id", t)))
            .transpose()?,
        updated_at: row.updated_at,
    })
}

pub(super) fn to_row(order: &Order) -> order::ActiveModel {
    order::ActiveModel {
        id: Set(order.id.as_str().to_owned()),
        user_id: Set(order.user_id.as_str().to_owned()),
        event_id: Set(order.event_id.0),
        product_id: Set(order.product_id.0),
        bucket_no: Set(i32_of(order.bucket_no())),
        quantity: Set(i32_of(order.quantity)),
        bucket_split: Set(order.allocation.stored_split()),
        unit_price: Set(order.unit_price),
        total_price: Set(order.total_price),
        strategy: Set(order.strategy.as_str().to_owned()),
        status: Set(order.status.as_str().to_owned()),
        idempotency_key: Set(order
            .idempotency_key
            .as_ref()
            .map(|k| k.as_str().to_owned())),
        request_fingerprint: Set(order.request_fingerprint.clone()),
        placement_id: Set(order.placement_id.clone()),
        created_at: Set(order.created_at),
        expires_at: Set(order.expires_at),
        paid_at: Set(order.paid_at),
        transaction_id: Set(order.transaction_id.as_ref().map(|t| t.as_str().to_owned())),
        updated_at: Set(order.updated_at),
        released_by: NotSet,
    }
}

impl SeaOrmOrderGateway {
    async fn try_release(
        &self,
        id: &OrderId,
        release: Release,
        now: DateTime<Utc>,
        token: &str,
    ) -> Result<Option<Order>, DbErr> {
        let tx = self.db.begin_write().await?;
        let result = release_in(&tx, self.db.backend(), id, release, now, token).await;
        tx.finish(result, Option::is_some).await
    }

    async fn page(
        &self,
        query: sea_orm::Select<order::Entity>,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError> {
        let newest_first = query
            .order_by_desc(order::Column::CreatedAt)
            .order_by_desc(order::Column::Id);
        self.db.page(newest_first, page, to_domain).await
    }
}

#[async_trait]
impl OrderGateway for SeaOrmOrderGateway {
    #[tracing::instrument(skip_all, fields(order.id = %order.id, product.id = order.product_id.0))]
    async fn place(&self, order: &Order, limit: PerUserLimit) -> Result<(), GatewayError> {
        match self.committer().submit((order.clone(), limit)).await {
            Ok(Placed::Done) => Ok(()),
            // A retry after a commit whose answer was lost meets its own order — as a
            // taken id, or as a guard its own first attempt already moved (the quota,
            // the bucket): done.
            Err(e) if is_primary_key_violation(&e) && self.find(&order.id).await?.is_some() => {
                Ok(())
            }
            Ok(Placed::SoldOut | Placed::OverLimit) if self.find(&order.id).await?.is_some() => {
                Ok(())
            }
            Ok(Placed::SoldOut) => Err(GatewayError::rejected(OrderError::SoldOut)),
            Ok(Placed::OverLimit) => Err(GatewayError::rejected(OrderError::LimitExceeded {
                limit: limit.get(),
            })),
            Err(e) => Err(duplicate_key(&e).map_or_else(|| db_error(e), GatewayError::Duplicate)),
        }
    }

    #[tracing::instrument(skip_all, fields(order.id = %id))]
    async fn find(&self, id: &OrderId) -> Result<Option<Order>, GatewayError> {
        order::Entity::find_by_id(id.as_str().to_owned())
            .one(self.db.connection())
            .await
            .map_err(db_error)?
            .map(to_domain)
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_idempotency_key(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, GatewayError> {
        order::Entity::find()
            .filter(order::Column::UserId.eq(user.as_str()))
            .filter(order::Column::IdempotencyKey.eq(key.as_str()))
            .one(self.db.connection())
            .await
            .map_err(db_error)?
            .map(to_domain)
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list_for_user(
        &self,
        user: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError> {
        self.page(
            order::Entity::find().filter(order::Column::UserId.eq(user.as_str())),
            page,
        )
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list(
        &self,
        filter: OrderFilter,
        page: PageRequest,
    ) -> Result<Page<Order>, GatewayError> {
        let mut query = order::Entity::find();
        if let Some(product) = filter.product_id {
            query = query.filter(order::Column::ProductId.eq(product.0));
        }
        if let Some(status) = filter.status {
            query = query.filter(order::Column::Status.eq(status.as_str()));
        }
        self.page(query, page).await
    }

    #[tracing::instrument(skip_all, fields(order.id = %order.id))]
    async fn pay(&self, order: &Order) -> Result<(), GatewayError> {
        let (Some(paid_at), Some(transaction_id)) = (order.paid_at, order.transaction_id.as_ref())
        else {
            return Err(GatewayError::Internal(
                "pay needs paid_at and a transaction id".into(),
            ));
        };
        let result = with_retries(|| async {
            let tx = self.db.begin_write().await?;
            let result = order::Entity::update_many()
                .col_expr(
                    order::Column::Status,
                    Expr::value(OrderStatus::Paid.as_str()),
                )
                .col_expr(order::Column::PaidAt, Expr::value(paid_at))
                .col_expr(
                    order::Column::TransactionId,
                    Expr::value(transaction_id.as_str()),
                )
                .col_expr(order::Column::UpdatedAt, Expr::value(paid_at))
                .filter(order::Column::Id.eq(order.id.as_str()))
                .filter(order::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
                .filter(order::Column::ExpiresAt.gt(paid_at))
                .exec(&*tx)
                .await
                .map(|r| r.rows_affected);
            tx.finish(result, |rows| *rows == 1).await
        })
        .await;
        match result {
            Ok(1) => Ok(()),
            Ok(_) => Err(GatewayError::NotFound),
            Err(e) => Err(duplicate_key(&e).map_or_else(|| db_error(e), GatewayError::Duplicate)),
        }
    }

    #[tracing::instrument(skip_all, fields(order.id = %id))]
    async fn release(
        &self,
        id: &OrderId,
        release: Release,
        now: DateTime<Utc>,
        token: &str,
    ) -> Result<Option<Order>, GatewayError> {
        match with_retries(|| self.try_release(id, release, now, token)).await {
            Ok(released) => Ok(released),
            Err(DbErr::RecordNotFound(_)) => Err(GatewayError::NotFound),
            Err(e) => Err(db_error(e)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn expired(
        &self,
        now: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: u64,
    ) -> Result<Vec<Order>, GatewayError> {
        let mut query = order::Entity::find()
            .filter(order::Column::Status.eq(OrderStatus::PendingPayment.as_str()))
            .filter(order::Column::ExpiresAt.lte(now));
        if let Some((expires_at, id)) = after {
            query = query.filter(
                Condition::any()
                    .add(order::Column::ExpiresAt.gt(expires_at))
                    .add(
                        Condition::all()
                            .add(order::Column::ExpiresAt.eq(expires_at))
                            .add(order::Column::Id.gt(id.as_str())),
                    ),
            );
        }
        query
            .order_by_asc(order::Column::ExpiresAt)
            .order_by_asc(order::Column::Id)
            .limit(limit)
            .all(self.db.connection())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    #[tracing::instrument(skip_all, fields(product.id = product_id.0))]
    async fn held(&self, product_id: ProductId) -> Result<i64, GatewayError> {
        let sum: Option<i64> = order::Entity::find()
            .select_only()
            .column_as(self.db.sum_i64("quantity"), "held")
            .filter(order::Column::ProductId.eq(product_id.0))
            .filter(order::Column::Status.is_in([
                OrderStatus::PendingPayment.as_str(),
                OrderStatus::Paid.as_str(),
            ]))
            .into_tuple()
            .one(self.db.connection())
            .await
            .map_err(db_error)?;
        Ok(sum.unwrap_or(0))
    }

    #[tracing::instrument(skip_all, fields(product.id = product_id.0))]
    async fn quotas(&self, product_id: ProductId) -> Result<Vec<(UserId, u32)>, GatewayError> {
        let rows = purchase_quota::Entity::find()
            .filter(purchase_quota::Column::ProductId.eq(product_id.0))
            .filter(purchase_quota::Column::Used.gt(0))
            .all(self.db.connection())
            .await
            .map_err(db_error)?;
        rows.into_iter()
            .map(|row| {
                let user =
                    UserId::parse(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?;
                Ok((user, u32::try_from(row.used).unwrap_or(0)))
            })
            .collect()
    }
}
