//! [`PlacementGateway`] on sea-orm: durable placement rows and the batching order
//! transaction behind the async strategy.
//!
//! A placement is claimed (`queued → succeeded`, a conditional update) in the same
//! transaction that writes its order, so a placement is turned into an order at most
//! once whatever the number of deliveries, and the sweeper's `queued → failed` and the
//! consumer's claim exclude each other. New placements are written through a group
//! committer: concurrent placements share one insert and one commit. A placement
//! recorded in Redis gets its row only when it resolves ([`SeaOrmPlacementGateway::adopt`],
//! or inserted `succeeded` with its order): the unique id decides who resolved it.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::UserId;
use flash_sale_domain::gateway::{Fulfil, Fulfilled, GatewayError, PlacementGateway, UniqueKey};
use flash_sale_domain::order::{IdempotencyKey, OrderError};
use flash_sale_domain::placement::{Placement, PlacementId};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::placement;
use super::error::duplicate_key;
use super::group_commit::{Committer, all_or_each};
use super::order_write::{is_primary_key_violation, with_retries};
use super::placement_rows::{insert_unless_present, placement_row, stored_message, to_domain};
use super::placement_write::{batch_in, one_in};
use super::{Database, db_error};

const QUEUED: &str = "queued";

/// Placements in `placements`; their orders in `orders` (with buckets, quotas and the
/// ledger, as [`super::SeaOrmOrderGateway`] writes them).
#[derive(Debug, Clone)]
pub struct SeaOrmPlacementGateway {
    db: Database,
    /// Started with the first placement (it needs the runtime).
    committer: Arc<OnceLock<Committer<Placement, ()>>>,
}

impl SeaOrmPlacementGateway {
    /// A gateway over `db`.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            committer: Arc::default(),
        }
    }

    fn committer(&self) -> &Committer<Placement, ()> {
        self.committer.get_or_init(|| {
            let db = self.db.clone();
            Committer::spawn("placements", move |placements| {
                let db = db.clone();
                async move { insert_batch(&db, &placements).await }
            })
        })
    }
}

/// A group commit of new placements: one multi-row insert, or — when a key is taken —
/// each on its own; the outcome of each, in order.
async fn insert_batch(db: &Database, placements: &[Placement]) -> Vec<Result<(), DbErr>> {
    let insert = |rows: Vec<placement::ActiveModel>| async move {
        let tx = db.begin_write().await?;
        let result = placement::Entity::insert_many(rows)
            .exec_without_returning(&*tx)
            .await
            .map(|_| true);
        tx.finish(result, |done| *done).await
    };
    all_or_each(
        placements,
        (),
        |all| insert(all.iter().map(placement_row).collect()),
        |one| async move { insert(vec![placement_row(one)]).await.map(|_| ()) },
    )
    .await
}

impl SeaOrmPlacementGateway {
    /// Writes the row of a placement recorded elsewhere (as it is: queued, or
    /// resolved) unless a row with its id exists; whether it wrote it.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn adopt(&self, p: &Placement) -> Result<bool, GatewayError> {
        let written = with_retries(|| async {
            let tx = self.db.begin_write().await?;
            let result = insert_unless_present(&*tx, std::slice::from_ref(p)).await;
            tx.finish(result, |_| true).await
        })
        .await
        .map_err(db_error)?;
        Ok(written == 1)
    }

    /// [`Self::adopt`] for many, in one statement.
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn adopt_all(&self, placements: &[Placement]) -> Result<(), GatewayError> {
        for chunk in placements.chunks(500) {
            with_retries(|| async {
                let tx = self.db.begin_write().await?;
                let result = insert_unless_present(&*tx, chunk).await;
                tx.finish(result, |_| true).await
            })
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    async fn try_batch(&self, batch: &[Fulfil]) -> Result<bool, DbErr> {
        let tx = self.db.begin_write().await?;
        let result = batch_in(&tx, &self.db, batch).await;
        tx.finish(result, |done| *done).await
    }

    async fn try_one(&self, item: &Fulfil) -> Result<Fulfilled, DbErr> {
        let tx = self.db.begin_write().await?;
        let result = one_in(&tx, &self.db, item).await;
        tx.finish(result, |f| *f == Fulfilled::Placed).await
    }

    async fn fulfil_one(&self, item: &Fulfil) -> Result<Fulfilled, GatewayError> {
        match with_retries(|| self.try_one(item)).await {
            Ok(outcome) => Ok(outcome),
            // Someone wrote the row of a placement that had none meanwhile (a re-lay
            // as queued, the sweeper as failed): go by that row.
            Err(e)
                if item.unwritten.is_some()
                    && (is_primary_key_violation(&e)
                        || duplicate_key(&e) == Some(UniqueKey::PlacementId)) =>
            {
                let written = Fulfil {
                    unwritten: None,
                    ..item.clone()
                };
                Box::pin(self.fulfil_one(&written)).await
            }
            // A retried commit whose answer was lost meets its own order.
            Err(e)
                if is_primary_key_violation(&e)
                    || duplicate_key(&e) == Some(UniqueKey::PlacementId) =>
            {
                Ok(Fulfilled::AlreadyResolved { succeeded: true })
            }
            Err(e) => match duplicate_key(&e) {
                // The buyer used the key for an order of another strategy.
                Some(UniqueKey::IdempotencyKey) => {
                    Ok(Fulfilled::Rejected(OrderError::IdempotencyKeyReused))
                }
                _ => Err(db_error(e)),
            },
        }
    }
}

#[async_trait]
impl PlacementGateway for SeaOrmPlacementGateway {
    #[tracing::instrument(skip_all, fields(placement.id = %p.id))]
    async fn insert(&self, p: &Placement) -> Result<(), GatewayError> {
        self.committer()
            .submit(p.clone())
            .await
            .map_err(|e| duplicate_key(&e).map_or_else(|| db_error(e), GatewayError::Duplicate))
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn delete(&self, id: &PlacementId) -> Result<bool, GatewayError> {
        placement::Entity::delete_many()
            .filter(placement::Column::Id.eq(id.as_str()))
            .filter(placement::Column::Status.eq(QUEUED))
            .exec(self.db.connection())
            .await
            .map(|r| r.rows_affected == 1)
            .map_err(db_error)
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn find(&self, id: &PlacementId) -> Result<Option<Placement>, GatewayError> {
        placement::Entity::find_by_id(id.as_str().to_owned())
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
    ) -> Result<Option<Placement>, GatewayError> {
        placement::Entity::find()
            .filter(placement::Column::UserId.eq(user.as_str()))
            .filter(placement::Column::IdempotencyKey.eq(key.as_str()))
            .one(self.db.connection())
            .await
            .map_err(db_error)?
            .map(to_domain)
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(batch.size = batch.len()))]
    async fn fulfil(&self, batch: &[Fulfil]) -> Result<Vec<Fulfilled>, GatewayError> {
        if batch.len() > 1 {
            match with_retries(|| self.try_batch(batch)).await {
                Ok(true) => return Ok(vec![Fulfilled::Placed; batch.len()]),
                // A guard said no, or a duplicate delivery: item by item.
                Ok(false) => {}
                Err(e) if duplicate_key(&e).is_some() || is_primary_key_violation(&e) => {}
                Err(e) => return Err(db_error(e)),
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        for item in batch {
            outcomes.push(self.fulfil_one(item).await?);
        }
        Ok(outcomes)
    }

    #[tracing::instrument(skip_all, fields(placement.id = %id))]
    async fn fail(
        &self,
        id: &PlacementId,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, GatewayError> {
        let message = stored_message(message);
        let result = with_retries(|| async {
            let tx = self.db.begin_write().await?;
            let result = placement::Entity::update_many()
                .col_expr(placement::Column::Status, Expr::value("failed"))
                .col_expr(placement::Column::ErrorCode, Expr::value(code))
                .col_expr(
                    placement::Column::ErrorMessage,
                    Expr::value(message.as_str()),
                )
                .col_expr(placement::Column::UpdatedAt, Expr::value(now))
                .filter(placement::Column::Id.eq(id.as_str()))
                .filter(placement::Column::Status.eq(QUEUED))
                .exec(&*tx)
                .await
                .map(|r| r.rows_affected == 1);
            tx.finish(result, |failed| *failed).await
        })
        .await;
        result.map_err(db_error)
    }

    #[tracing::instrument(skip_all)]
    async fn queued(
        &self,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Placement>, GatewayError> {
        placement::Entity::find()
            .filter(placement::Column::Status.eq(QUEUED))
            .filter(placement::Column::CreatedAt.lt(before))
            .order_by_asc(placement::Column::CreatedAt)
            .limit(limit)
            .all(self.db.connection())
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    /// Rows are written from the start: nothing to write.
    async fn write_rows(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        self.existing(ids).await
    }

    #[tracing::instrument(skip_all, fields(ids = ids.len()))]
    async fn existing(&self, ids: &[String]) -> Result<HashSet<String>, GatewayError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<String> = placement::Entity::find()
                .select_only()
                .column(placement::Column::Id)
                .filter(placement::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(self.db.connection())
                .await
                .map_err(db_error)?;
            found.extend(rows);
        }
        Ok(found)
    }
}
