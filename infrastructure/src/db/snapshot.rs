//! [`ProductGateway::stock_snapshot`]: a product's buckets and which reservations
//! already have their order written, from one consistent snapshot — what the
//! bucket-by-bucket consistency check compares the stock ledger with.
//!
//! [`ProductGateway::stock_snapshot`]: flash_sale_domain::gateway::ProductGateway::stock_snapshot

use std::collections::HashSet;

use flash_sale_domain::gateway::GatewayError;
use flash_sale_domain::product::ProductId;
use flash_sale_domain::stock::StockBucket;
use sea_orm::{
    AccessMode, ColumnTrait, DbBackend, DbErr, EntityTrait, IsolationLevel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::entity::{order, stock_bucket};
use super::placement_write::look_up_by_key;
use super::product_gateway::bucket_to_domain;
use super::{Database, db_error};

/// Reads the buckets and the written orders among `tokens` in one snapshot
/// (REPEATABLE READ on MySQL and PostgreSQL; SQLite's read transaction).
pub(super) async fn stock_snapshot(
    db: &Database,
    id: ProductId,
    tokens: &[String],
) -> Result<(Vec<StockBucket>, HashSet<String>), GatewayError> {
    let (isolation, access) = match db.backend() {
        DbBackend::Sqlite => (None, None),
        _ => (
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        ),
    };
    let tx = db
        .connection()
        .begin_with_config(isolation, access)
        .await
        .map_err(db_error)?;
    let result = async {
        // Orders are found by id however young the table (as the consumer finds them).
        look_up_by_key(&tx, db.backend()).await?;
        let buckets: Vec<StockBucket> = stock_bucket::Entity::find()
            .filter(stock_bucket::Column::ProductId.eq(id.0))
            .order_by_asc(stock_bucket::Column::BucketNo)
            .all(&tx)
            .await?
            .iter()
            .map(bucket_to_domain)
            .collect();
        let mut written = HashSet::new();
        for chunk in tokens.chunks(500) {
            let ids: Vec<String> = order::Entity::find()
                .select_only()
                .column(order::Column::Id)
                .filter(order::Column::Id.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(&tx)
                .await?;
            written.extend(ids);
        }
        Ok::<_, DbErr>((buckets, written))
    }
    .await;
    let _ = tx.commit().await;
    result.map_err(db_error)
}
