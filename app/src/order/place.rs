//! `POST /orders`: placing an order.
//!
//! Every strategy starts the same way: idempotency-key replay (one request per key at
//! a time, across instances), sale checks from the catalogue cache, the per-user
//! limit, the local sold-out flag, the request's time budget. Then the event's
//! strategy takes over ([`super::strategy`]). Callers must let `execute` run to
//! completion (the HTTP adapter runs every write in a task of its own): a reservation
//! is settled by the same call that made it.

use std::sync::Arc;
use std::time::Duration;

use flash_sale_client::OrderPlaceCmd;
use flash_sale_domain::Chain;
use flash_sale_domain::event::Event;
use flash_sale_domain::gateway::{Attempt, LockGateway, LockLease, OrderGateway, PlacementGateway};
use flash_sale_domain::order::{IdempotencyKey, OrderError, OrderRequest};
use flash_sale_domain::placement::Placement;
use flash_sale_domain::product::{Product, ProductId};
use flash_sale_domain::{Strategy, UserId};

use super::idempotency::KeyLocks;
use super::strategy::{PlaceContext, PlaceOrderOutcome, Strategies, replay};
use crate::Caller;
use crate::catalogue::CatalogueService;
use crate::console::AttemptCounter;
use crate::error::AppError;
use crate::policy::OrderingPolicy;
use crate::stock::StockService;

struct PlaceCore {
    orders: Arc<dyn OrderGateway>,
    placements: Arc<dyn PlacementGateway>,
    catalogue: Arc<CatalogueService>,
    stock: Arc<StockService>,
    policy: Arc<OrderingPolicy>,
    strategies: Strategies,
    key_locks: KeyLocks,
    locks: Arc<dyn LockGateway>,
    attempts: Arc<AttemptCounter>,
}

/// How long a keyed request's lock lives (longer than any request).
const KEY_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a keyed request waits for another one with the same key, on any instance.
const KEY_LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// `POST /orders`.
pub struct PlaceOrderCmdExe {
    core: PlaceCore,
}

fn outcome_label(result: &Result<PlaceOrderOutcome, AppError>) -> &'static str {
    match result {
        Ok(PlaceOrderOutcome::Created(_)) => "created",
        Ok(PlaceOrderOutcome::Replayed(_)) => "replayed",
        Ok(PlaceOrderOutcome::Accepted(_)) => "queued",
        Err(AppError::Domain(e)) => match e.kind() {
            flash_sale_domain::ErrorKind::SoldOut => "sold_out",
            flash_sale_domain::ErrorKind::LimitExceeded => "limit_exceeded",
            flash_sale_domain::ErrorKind::NotOnSale => "not_on_sale",
            flash_sale_domain::ErrorKind::Unavailable => "unavailable",
            _ => "rejected",
        },
        Err(AppError::NotFound(_)) => "not_found",
        Err(AppError::Unavailable(_)) => "unavailable",
        Err(AppError::Internal(_)) => "error",
    }
}

impl PlaceOrderCmdExe {
    /// Built from its collaborators.
    pub fn new(
        orders: Arc<dyn OrderGateway>,
        placements: Arc<dyn PlacementGateway>,
        catalogue: Arc<CatalogueService>,
        stock: Arc<StockService>,
        strategies: Strategies,
        locks: Arc<dyn LockGateway>,
        attempts: Arc<AttemptCounter>,
    ) -> Self {
        let policy = catalogue.policy().clone();
        Self {
            core: PlaceCore {
                orders,
                placements,
                catalogue,
                stock,
                policy,
                strategies,
                key_locks: KeyLocks::default(),
                locks,
                attempts,
            },
        }
    }

    /// Places an order for `caller`; `key` is the raw `Idempotency-Key` header.
    pub async fn execute(
        &self,
        caller: &Caller,
        cmd: OrderPlaceCmd,
        key: Option<&str>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let key = key.map(IdempotencyKey::parse).transpose()?;
        let request = OrderRequest {
            product_id: ProductId(cmd.product_id),
            quantity: cmd.quantity,
        };
        self.core.place(caller.user_id.clone(), request, key).await
    }
}

impl PlaceCore {
    async fn place(
        &self,
        user: UserId,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let Some(key) = key else {
            return self.place_once(&user, request, None).await;
        };
        // One request per key at a time: in this process, then across instances (a
        // duplicate sent to another instance waits here and replays the first answer).
        let _in_flight = self.key_locks.lock(&user, &key).await;
        let lease = self.key_lease(&user, &key).await?;
        let result = self.place_once(&user, request, Some(key)).await;
        if let Err(e) = self.locks.release(&lease).await {
            tracing::debug!(error = %Chain(&e), "key lock release failed; it expires");
        }
        result
    }

    /// Takes the key's lock shared by every instance, waiting for another holder.
    async fn key_lease(&self, user: &UserId, key: &IdempotencyKey) -> Result<LockLease, AppError> {
        let name = format!(
            "idem:{}:{}:{}",
            user.as_str().len(),
            user.as_str(),
            key.as_str()
        );
        crate::locks::acquire_within(&*self.locks, &name, KEY_LOCK_TTL, KEY_LOCK_PATIENCE)
            .await?
            .ok_or_else(|| {
                AppError::Unavailable(
                    "a request with this Idempotency-Key is still in progress; try again".into(),
                )
            })
    }

    async fn place_once(
        &self,
        user: &UserId,
        request: OrderRequest,
        key: Option<IdempotencyKey>,
    ) -> Result<PlaceOrderOutcome, AppError> {
        if let Some(key) = &key
            && let Some(result) = self.replay(user, key, &request).await?
        {
            return result;
        }
        let product_id = request.product_id;
        let (event, entry) = match self.sale_context(product_id).await {
            Ok(context) => context,
            Err(refused @ AppError::Domain(_)) => {
                // Not on sale: the product exists, the console counts the refusal.
                self.attempts.record(product_id, Attempt::NotOnSale);
                return Err(refused);
            }
            Err(e) => return Err(e),
        };
        let strategy = self.policy.effective(&event);
        let result = self
            .checked_place(
                user,
                &event,
                &entry.product,
                request,
                key.as_ref(),
                strategy,
            )
            .await;
        count(strategy, &result);
        if let Some(attempt) = attempt(&result) {
            self.attempts.record(product_id, attempt);
        }
        result
    }

    /// The first answer to this key: a 202 placement (as it is now) when the first
    /// request made one, else the 201 order.
    async fn replay(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
        request: &OrderRequest,
    ) -> Result<Option<Result<PlaceOrderOutcome, AppError>>, AppError> {
        let order = self.orders.find_by_idempotency_key(user, key).await?;
        if order.as_ref().is_none_or(|o| o.placement_id.is_some())
            && let Some(result) =
                super::placement::placement_replay(&self.placements, user, key, request).await?
        {
            count(Placement::STRATEGY, &result);
            return Ok(Some(result));
        }
        Ok(order.map(|first| {
            let result = replay(&first, request);
            count(first.strategy, &result);
            result
        }))
    }

    async fn checked_place(
        &self,
        user: &UserId,
        event: &Event,
        product: &Product,
        request: OrderRequest,
        key: Option<&IdempotencyKey>,
        strategy: Strategy,
    ) -> Result<PlaceOrderOutcome, AppError> {
        let limit = product.per_user_limit.get();
        if request.quantity > limit {
            return Err(AppError::domain(OrderError::LimitExceeded { limit }));
        }
        if self.stock.is_sold_out(product.id) {
            return Err(AppError::domain(OrderError::SoldOut));
        }
        if crate::budget::exhausted() {
            return Err(AppError::Unavailable(
                "the request ran out of time before anything was reserved; try again".into(),
            ));
        }
        self.strategies
            .of(strategy)
            .place(PlaceContext {
                user,
                event,
                product,
                request,
                key,
                strategy,
            })
            .await
    }

    async fn sale_context(
        &self,
        product_id: ProductId,
    ) -> Result<(Arc<Event>, Arc<crate::catalogue::ProductEntry>), AppError> {
        let entry = self
            .catalogue
            .product(product_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let event = self
            .catalogue
            .event(entry.product.event_id)
            .await?
            .ok_or(AppError::NotFound("product"))?;
        let now = self.catalogue.now();
        if !event.is_visible() {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the event is not online",
            )));
        }
        if !event.is_on_sale(now) {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the event is outside its sale window",
            )));
        }
        if !entry.product.is_online() {
            return Err(AppError::domain(OrderError::NotOnSale(
                "the product is offline",
            )));
        }
        Ok((event, entry))
    }
}

/// What the console counts of a placed or refused order (not replays, not unknown
/// products, not bugs).
fn attempt(result: &Result<PlaceOrderOutcome, AppError>) -> Option<Attempt> {
    Some(match result {
        Ok(PlaceOrderOutcome::Created(_) | PlaceOrderOutcome::Accepted(_)) => Attempt::Sold,
        Err(AppError::Domain(e)) => match e.kind() {
            flash_sale_domain::ErrorKind::SoldOut => Attempt::SoldOut,
            flash_sale_domain::ErrorKind::LimitExceeded => Attempt::LimitExceeded,
            flash_sale_domain::ErrorKind::NotOnSale => Attempt::NotOnSale,
            flash_sale_domain::ErrorKind::Unavailable => Attempt::Unavailable,
            _ => return None,
        },
        Err(AppError::Unavailable(_)) => Attempt::Unavailable,
        Ok(PlaceOrderOutcome::Replayed(_)) | Err(_) => return None,
    })
}

fn count(strategy: Strategy, result: &Result<PlaceOrderOutcome, AppError>) {
    metrics::counter!(
        "flash_sale_order_attempts_total",
        "strategy" => strategy.as_str(),
        "outcome" => outcome_label(result),
    )
    .increment(1);
}
