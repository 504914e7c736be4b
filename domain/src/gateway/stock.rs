//! The stock ledger port: the hot-path view of stock and per-user quotas (in process,
//! or Redis). Reservations happen there first, atomically for stock and quota, and
//! the database confirms them.
//!
//! Every reservation is a *hold* named by a token (the order or placement id) until it
//! is settled exactly once; every return of units is announced before its database
//! write and finished after it. Both are visible in [`LedgerView`], so a re-lay can
//! wait for a quiet moment, a consistency check can tell in-flight work from drift,
//! and a recovery job can end the holds whose request is gone.

use std::time::Duration;

use async_trait::async_trait;

use super::GatewayError;
use crate::allocation::Allocation;
use crate::placement::Placement;
use crate::product::ProductId;
use crate::stock::{BucketDelta, StockBucket};
use crate::user::UserId;

/// What a hold is on its way to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKind {
    /// A `sync`/`buckets` order: its request writes it and settles the hold.
    Order,
    /// An async placement: durable as a row once stored, written by the consumer.
    Placement,
}

impl HoldKind {
    /// The one-letter form used in ledger records.
    pub fn letter(self) -> &'static str {
        match self {
            Self::Order => "o",
            Self::Placement => "p",
        }
    }

    /// The kind of a record's letter.
    pub fn from_letter(letter: &str) -> Option<Self> {
        match letter {
            "o" => Some(Self::Order),
            "p" => Some(Self::Placement),
            _ => None,
        }
    }
}

/// A request to reserve units and quota in the stock ledger.
#[derive(Debug, Clone, Copy)]
pub struct ReserveRequest<'a> {
    /// The product.
    pub product_id: ProductId,
    /// The buyer.
    pub user_id: &'a UserId,
    /// Units.
    pub quantity: u32,
    /// The per-user limit in force.
    pub limit: u32,
    /// Names the reservation (the order or placement id): reserving twice with it
    /// answers the first reservation, settling it twice changes nothing the second time.
    pub token: &'a str,
    /// What it is for.
    pub kind: HoldKind,
    /// The placement this reservation is for, recorded beside the hold in the same
    /// step when the ledger records placements ([`StockLedger::records_placements`]);
    /// its allocation is the ledger's to choose (the one given is ignored).
    pub placement: Option<&'a Placement>,
}

/// What a reservation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Units and quota are reserved; `left` units remain in the product (`-1` when not
    /// computed).
    Reserved {
        /// Where the units came from: the buyer's home bucket when it holds them all,
        /// else the fewest buckets in probe order.
        allocation: Allocation,
        /// Units left in every bucket together.
        left: i64,
    },
    /// Fewer than the requested units remain in the whole product; `left` of them (0 =
    /// sold out).
    SoldOut {
        /// Units left in every bucket together.
        left: i64,
    },
    /// The buyer's quota would pass the limit; nothing was reserved.
    LimitExceeded {
        /// Units the buyer already holds.
        used: u32,
    },
    /// The ledger does not hold this product yet: load it from the database first.
    NotLoaded,
    /// The product's stock is being re-laid; try again shortly.
    Suspended,
    /// A placement refused because the placement queue is behind: placements accepted
    /// `lag` ago still wait for the consumers. Nothing was reserved.
    Backlogged {
        /// How long the waiting placements have waited.
        lag: Duration,
    },
}

/// A reservation a re-lay carries over: a queued placement, durable in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The reservation's token (the placement id).
    pub token: String,
    /// The buyer.
    pub user_id: UserId,
    /// Where its units are.
    pub allocation: Allocation,
}

/// A reservation not yet settled, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its token.
    pub token: String,
    /// What it is for.
    pub kind: HoldKind,
    /// The buyer.
    pub user_id: UserId,
    /// Where its units are.
    pub allocation: Allocation,
    /// How long ago it was made.
    pub age: Duration,
}

/// A return of units announced and not yet finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnInProgress {
    /// Its token.
    pub token: String,
    /// How long ago it was announced.
    pub age: Duration,
}

/// A product's stock as the stock ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerView {
    /// What each bucket would still sell, by bucket number.
    pub available: Vec<i64>,
    /// Units held by unsettled reservations, by bucket number.
    pub in_flight: Vec<i64>,
    /// The unsettled reservations.
    pub holds: Vec<Hold>,
    /// The returns in progress.
    pub returns: Vec<ReturnInProgress>,
    /// Whether the product is suspended now.
    pub suspended: bool,
}

/// How a reservation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The order is in the database: the units stop being in flight.
    Committed,
    /// No order was written: the units and the buyer's quota go back.
    Released,
}

/// A suspension of a product's stock: an owner (who alone renews or ends it) and a
/// time to live, after which it ends by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    /// The owner's secret token.
    pub owner: String,
    /// How long it lasts from now unless renewed.
    pub ttl: Duration,
}

/// The hot-path view of stock and per-user quotas.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StockLedger: Send + Sync {
    /// Reserves `quantity` units (from the buyer's home bucket first, then the others;
    /// from several buckets when no single one holds them) and the same in the buyer's
    /// quota, atomically; the quota is checked first, so a refused request burns no
    /// stock.
    ///
    /// # Errors
    /// `Unavailable` when the ledger cannot be reached.
    async fn reserve<'a>(&self, request: ReserveRequest<'a>) -> Result<Reservation, GatewayError>;

    /// Whether a reservation for a placement records the placement itself, beside
    /// its hold and in the same step ([`ReserveRequest::placement`]): then the
    /// placement needs no row of its own until it resolves, and the placement gateway
    /// in use reads it from there.
    fn records_placements(&self) -> bool;

    /// Ends the hold `token` exactly once: its units stop being in flight (and, when
    /// released, go back to their buckets with the buyer's quota). The ledger's own
    /// record says where the units are; `allocation` is the caller's belief, used to
    /// find them faster. A hold that is not there (settled before, or wiped by a
    /// rebuild) changes nothing.
    ///
    /// # Errors
    /// `Unavailable`; the recovery job ends what a lost settlement leaves behind.
    async fn settle(
        &self,
        product_id: ProductId,
        token: &str,
        allocation: &Allocation,
        settlement: Settlement,
    ) -> Result<(), GatewayError>;

    /// Announces a return of units (cancel, expiry, stock change), named by `token`,
    /// about to be written to the database. `Ok(false)` when the product is not loaded
    /// (nothing to do).
    ///
    /// # Errors
    /// `Rejected(Suspended)` while the product is suspended; `Unavailable`.
    async fn begin_return(&self, product_id: ProductId, token: &str) -> Result<bool, GatewayError>;

    /// Ends an announced return exactly once: applies `deltas` to the buckets (and
    /// gives `quota` units back to the buyer, when set) if the database write
    /// committed, or nothing if it did not.
    ///
    /// # Errors
    /// `Unavailable`; reconcile repairs what a lost return leaves behind.
    async fn finish_return<'u>(
        &self,
        product_id: ProductId,
        token: &str,
        deltas: &[BucketDelta],
        quota: Option<(&'u UserId, u32)>,
    ) -> Result<(), GatewayError>;

    /// Takes unsold units out of buckets, all or nothing, inside an announced return.
    /// `Ok(false)` when some bucket holds fewer than asked.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn take(
        &self,
        product_id: ProductId,
        deltas: &[BucketDelta],
    ) -> Result<bool, GatewayError>;

    /// Replaces the product's state with the database's: bucket availability (minus
    /// the units of `in_flight`, which become holds again) and every buyer's used
    /// quota (`quotas` already counts the in-flight units). Holds and returns not in
    /// `in_flight` are forgotten, so call it only when the product is not loaded, or
    /// suspended and quiet. A suspension in force stays.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn load(
        &self,
        product_id: ProductId,
        buckets: &[StockBucket],
        quotas: &[(UserId, u32)],
        in_flight: &[InFlight],
    ) -> Result<(), GatewayError>;

    /// Whether the product is loaded (cheaper than [`StockLedger::view`]).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn is_loaded(&self, product_id: ProductId) -> Result<bool, GatewayError>;

    /// The product's state, or `None` when it is not loaded.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn view(&self, product_id: ProductId) -> Result<Option<LedgerView>, GatewayError>;

    /// Stops new reservations and returns for the product under `suspension` (an
    /// operation that had started before goes on; [`StockLedger::view`] shows what is
    /// still in progress). `Ok(false)` when another owner's suspension is in force, or
    /// the product is not loaded.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn suspend(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError>;

    /// Extends `suspension` by its time to live; `false` when it is no longer in force
    /// (it expired, or the product was rebuilt).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn renew(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<bool, GatewayError>;

    /// Ends `suspension` (another owner's is left alone): reservations and returns
    /// come in again.
    ///
    /// # Errors
    /// `Unavailable`; the suspension then ends when its time to live runs out.
    async fn resume(
        &self,
        product_id: ProductId,
        suspension: &Suspension,
    ) -> Result<(), GatewayError>;
}

/// How long since `then_ms`, as seen at `now_ms` (both Unix milliseconds), never
/// negative.
pub fn age_ms(now_ms: i64, then_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(now_ms.saturating_sub(then_ms)).unwrap_or(0))
}
