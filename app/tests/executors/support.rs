//! Fixtures and mocked ports for the executor tests: a product on sale, its event, a
//! fixed clock, and a [`Ports`] set of mockall mocks that panic on any call a test did
//! not expect — so each test states exactly which calls the executor makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flash_sale_app::stock::{StockPorts, StockService};
use flash_sale_domain::Strategy;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::event::{Event, EventId, EventStatus, NewEvent};
use flash_sale_domain::gateway::{
    Clock, GatewayError, LockGateway, LockLease, MockLockGateway, MockOrderGateway,
    MockPlacementGateway, MockProductGateway, MockStockLedger, OrderGateway, PlacementGateway,
    ProductGateway, Relay, Settlement, StockState, StockStateSink,
};
use flash_sale_domain::order::{NewOrder, Order, OrderId, OrderRequest};
use flash_sale_domain::placement::{NewPlacement, Placement, PlacementId};
use flash_sale_domain::product::{NewProduct, Product, ProductId, ProductSpec, ProductStatus};
use flash_sale_domain::stock::StockBucket;
use flash_sale_domain::user::UserId;

/// The product every test sells.
pub const PRODUCT: ProductId = ProductId(7);

/// A clock that stands still.
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The tests' "now": inside the event's window.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
}

/// A buyer.
pub fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
}

/// An online event selling now.
pub fn event() -> Event {
    let start = now() - chrono::Duration::minutes(5);
    let new = NewEvent::new(
        "Sale",
        None,
        start,
        start + chrono::Duration::hours(1),
        None,
    )
    .expect("valid event");
    Event {
        id: EventId(3),
        title: new.title,
        description: new.description,
        window: new.window,
        strategy: new.strategy,
        status: EventStatus::Online,
        created_at: start,
        updated_at: start,
    }
}

/// [`PRODUCT`], online: 100 units over `buckets` buckets, 2 per buyer, 500 each.
pub fn product(buckets: u32) -> Product {
    let spec = ProductSpec {
        title: "Phone",
        description: None,
        original_price: 1000,
        flash_price: 500,
        stock: 100,
        per_user_limit: 2,
        bucket_count: buckets,
    };
    let new = NewProduct::new(EventId(3), &spec).expect("valid product");
    Product {
        id: PRODUCT,
        event_id: new.event_id,
        title: new.title,
        description: new.description,
        pricing: new.pricing,
        stock_total: new.stock,
        per_user_limit: new.per_user_limit,
        bucket_count: new.bucket_count,
        status: ProductStatus::Online,
        created_at: now(),
        updated_at: now(),
    }
}

/// A pending order of `quantity` units of [`PRODUCT`] by `buyer`, from `allocation`.
pub fn order(buyer: &str, allocation: Allocation) -> Order {
    Order::place(NewOrder {
        id: OrderId::generate(),
        user_id: user(buyer),
        event_id: EventId(3),
        request: OrderRequest {
            product_id: PRODUCT,
            quantity: allocation.quantity(),
        },
        allocation,
        unit_price: 500,
        strategy: Strategy::Sync,
        idempotency_key: None,
        placement_id: None,
        now: now(),
        payment_timeout: chrono::Duration::minutes(15),
    })
    .expect("valid order")
}

/// A queued placement of one unit of [`PRODUCT`] from bucket 0 by `buyer`.
pub fn placement(buyer: &str) -> Placement {
    Placement::queue(NewPlacement {
        id: PlacementId::generate(),
        user_id: user(buyer),
        event_id: EventId(3),
        request: OrderRequest {
            product_id: PRODUCT,
            quantity: 1,
        },
        allocation: Allocation::single(0, 1),
        unit_price: 500,
        idempotency_key: None,
        now: now(),
    })
    .expect("valid placement")
}

/// Calls a mock saw, in order, for the test to assert on afterwards.
#[derive(Clone)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone> Log<T> {
    /// Records one call.
    pub fn push(&self, call: T) {
        self.0.lock().expect("log").push(call);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<T> {
        self.0.lock().expect("log").clone()
    }

    /// How many calls so far.
    pub fn len(&self) -> usize {
        self.0.lock().expect("log").len()
    }
}

/// The ports the executors work with, each a mock with no expectation yet.
#[derive(Default)]
pub struct Mocks {
    /// The stock ledger.
    pub ledger: MockStockLedger,
    /// Products and buckets.
    pub products: MockProductGateway,
    /// Orders.
    pub orders: MockOrderGateway,
    /// Placements.
    pub placements: MockPlacementGateway,
    /// Named locks.
    pub locks: MockLockGateway,
}

/// The mocks, behind the trait objects the executors take, and the stock service
/// over them.
pub struct Ports {
    /// The stock service over the mocked ledger and gateways.
    pub stock: Arc<StockService>,
    /// Products and buckets.
    pub products: Arc<dyn ProductGateway>,
    /// Orders.
    pub orders: Arc<dyn OrderGateway>,
    /// Placements.
    pub placements: Arc<dyn PlacementGateway>,
    /// Named locks.
    pub locks: Arc<dyn LockGateway>,
    /// The fixed clock.
    pub clock: Arc<dyn Clock>,
}

impl Mocks {
    /// Mocks with no expectation: every call panics until a test expects it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The product is in the ledger already.
    pub fn loaded(mut self) -> Self {
        self.ledger.expect_is_loaded().returning(|_| Ok(true));
        self
    }

    /// Named locks are free: every acquisition succeeds and renewals hold; each
    /// acquisition and release is written to `log` as `"lock"` / `"unlock"`.
    pub fn free_locks(mut self, log: &Log<&'static str>) -> Self {
        let acquired = log.clone();
        self.locks.expect_try_acquire().returning(move |name, _| {
            acquired.push("lock");
            Ok(Some(LockLease {
                name: name.to_owned(),
                token: "lease".to_owned(),
            }))
        });
        self.locks.expect_renew().returning(|_, _| Ok(true));
        let released = log.clone();
        self.locks.expect_release().returning(move |_| {
            released.push("unlock");
            Ok(())
        });
        self
    }

    /// Settlements are written to `log` as (token, settlement).
    pub fn record_settlements(mut self, log: &Log<(String, Settlement)>) -> Self {
        let log = log.clone();
        self.ledger
            .expect_settle()
            .returning(move |_, token, _, settlement| {
                log.push((token.to_owned(), settlement));
                Ok(())
            });
        self
    }

    /// The mocks as ports, and the stock service over them (no notice bus: one
    /// instance).
    pub fn build(self) -> Ports {
        let products: Arc<dyn ProductGateway> = Arc::new(self.products);
        let orders: Arc<dyn OrderGateway> = Arc::new(self.orders);
        let placements: Arc<dyn PlacementGateway> = Arc::new(self.placements);
        let locks: Arc<dyn LockGateway> = Arc::new(self.locks);
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(now()));
        let stock = Arc::new(StockService::new(StockPorts {
            ledger: Arc::new(self.ledger),
            products: Arc::clone(&products),
            orders: Arc::clone(&orders),
            placements: Arc::clone(&placements),
            locks: Arc::clone(&locks),
            bus: None,
            clock: Arc::clone(&clock),
            recovery_after: Duration::from_secs(30),
        }));
        Ports {
            stock,
            products,
            orders,
            placements,
            locks,
            clock,
        }
    }
}

/// A database read of [`PRODUCT`] laid over `buckets` buckets of 25 units, for a
/// mocked `ProductGateway::relay` to hand to its sink.
pub fn stock_state(buckets: u32) -> StockState {
    StockState {
        product: product(buckets),
        buckets: (0..buckets)
            .map(|bucket_no| StockBucket {
                product_id: PRODUCT,
                bucket_no,
                total: 25,
                available: 25,
            })
            .collect(),
        quotas: Vec::new(),
        in_flight: Vec::new(),
    }
}

/// The database reloads [`PRODUCT`] once, over 4 buckets, through the sink.
pub fn database_reloads(mocks: &mut Mocks) {
    mocks
        .products
        .expect_relay()
        .times(1)
        .withf(|id, relay, _, _| *id == PRODUCT && *relay == Relay::Reload)
        .returning(|_, _, _, sink| relay_through(sink, &stock_state(4)));
}

/// What a mocked `ProductGateway::relay` does: hands `state` to the sink (which
/// rewrites the ledger) and answers the product as re-laid.
pub fn relay_through(
    sink: &dyn StockStateSink,
    state: &StockState,
) -> Result<Product, GatewayError> {
    futures::executor::block_on(sink.apply(state))?;
    Ok(state.product.clone())
}
