//! [`EventGateway`] on sea-orm.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flash_sale_domain::event::{Event, EventId, EventStatus, NewEvent, SaleWindow};
use flash_sale_domain::gateway::{EventGateway, GatewayError};
use flash_sale_domain::page::{Page, PageRequest};
use flash_sale_domain::text::{Description, Title};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set, Unchanged,
};

use super::entity::event;
use super::{Database, db_error};

/// Events in the `events` table.
#[derive(Debug, Clone)]
pub struct SeaOrmEventGateway {
    db: Database,
}

impl SeaOrmEventGateway {
    /// A gateway over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// A stored row that no longer parses: the data is corrupt.
pub(crate) fn corrupt(what: &str, value: &str) -> GatewayError {
    GatewayError::Internal(format!("stored {what} `{value}` is not valid").into())
}

fn to_domain(row: &event::Model) -> Result<Event, GatewayError> {
    let status = EventStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.status))?;
    let strategy = row
        .strategy
        .as_deref()
        .map(|s| s.parse().map_err(|_| corrupt("strategy", s)))
        .transpose()?;
    Ok(Event {
        id: EventId(row.id),
        title: Title::parse("title", &row.title).map_err(|_| corrupt("title", &row.title))?,
        description: Description::parse("description", &row.description)
            .map_err(|_| corrupt("description", "…"))?,
        window: SaleWindow::new(row.starts_at, row.ends_at, "ends_at")
            .map_err(|_| corrupt("window", &row.starts_at.to_rfc3339()))?,
        strategy,
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[async_trait]
impl EventGateway for SeaOrmEventGateway {
    #[tracing::instrument(skip_all)]
    async fn insert(&self, new: NewEvent, now: DateTime<Utc>) -> Result<Event, GatewayError> {
        let row = event::ActiveModel {
            title: Set(new.title.as_str().to_owned()),
            description: Set(new.description.as_str().to_owned()),
            starts_at: Set(new.window.starts_at()),
            ends_at: Set(new.window.ends_at()),
            status: Set(EventStatus::Draft.as_str().to_owned()),
            strategy: Set(new.strategy.map(|s| s.as_str().to_owned())),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let tx = self.db.begin_write().await.map_err(db_error)?;
        let result = row.insert(&*tx).await;
        let row = tx.finish(result, |_| true).await.map_err(db_error)?;
        to_domain(&row)
    }

    #[tracing::instrument(skip_all, fields(event.id = id.0))]
    async fn find(&self, id: EventId) -> Result<Option<Event>, GatewayError> {
        event::Entity::find_by_id(id.0)
            .one(self.db.connection())
            .await
            .map_err(db_error)?
            .map(|row| to_domain(&row))
            .transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn list(
        &self,
        status: Option<EventStatus>,
        page: PageRequest,
    ) -> Result<Page<Event>, GatewayError> {
        let mut query = event::Entity::find();
        if let Some(status) = status {
            query = query.filter(event::Column::Status.eq(status.as_str()));
        }
        self.db
            .page(query.order_by_desc(event::Column::Id), page, |row| {
                to_domain(&row)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(event.id = event.id.0))]
    async fn update(&self, event: &Event) -> Result<(), GatewayError> {
        let row = event::ActiveModel {
            id: Unchanged(event.id.0),
            title: Set(event.title.as_str().to_owned()),
            description: Set(event.description.as_str().to_owned()),
            starts_at: Set(event.window.starts_at()),
            ends_at: Set(event.window.ends_at()),
            status: Set(event.status.as_str().to_owned()),
            strategy: Set(event.strategy.map(|s| s.as_str().to_owned())),
            created_at: NotSet,
            updated_at: Set(event.updated_at),
        };
        let tx = self.db.begin_write().await.map_err(db_error)?;
        let result = event::Entity::update_many()
            .set(row)
            .filter(event::Column::Id.eq(event.id.0))
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
}
