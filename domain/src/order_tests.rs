//! Unit tests of `order`.

use chrono::Duration;

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
}

fn order() -> Order {
    Order::place(NewOrder {
        id: OrderId::generate(),
        user_id: UserId::parse("alice").expect("valid"),
        event_id: EventId(1),
        request: OrderRequest {
            product_id: ProductId(2),
            quantity: 3,
        },
        allocation: Allocation::single(0, 3),
        unit_price: 499,
        strategy: Strategy::Sync,
        idempotency_key: None,
        placement_id: None,
        now: now(),
        payment_timeout: Duration::minutes(15),
    })
    .expect("valid")
}

fn tx(id: &str) -> TransactionId {
    TransactionId::parse(id).expect("valid")
}

#[test]
fn the_server_computes_the_total_and_the_expiry() {
    let order = order();
    assert_eq!(order.total_price, 1497);
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.expires_at, now() + Duration::minutes(15));
}

#[test]
fn payment_needs_the_exact_amount_and_is_idempotent_per_transaction() {
    let mut order = order();
    let wrong = order.pay(&tx("t1"), 1, now()).expect_err("wrong amount");
    assert_eq!(wrong.kind(), ErrorKind::Validation);
    assert_eq!(order.status, OrderStatus::PendingPayment);
    assert_eq!(order.pay(&tx("t1"), 1497, now()), Ok(Payment::Paid));
    assert_eq!(order.pay(&tx("t1"), 1497, now()), Ok(Payment::AlreadyPaid));
    assert_eq!(
        order.pay(&tx("t2"), 1497, now()),
        Err(OrderError::NotPending {
            status: OrderStatus::Paid
        })
    );
}

#[test]
fn a_late_payment_is_refused_even_before_the_expiry_job_runs() {
    let mut order = order();
    let late = order.expires_at;
    assert_eq!(
        order.pay(&tx("t1"), 1497, late),
        Err(OrderError::PaymentTooLate)
    );
    order.expire(late).expect("expires");
    assert_eq!(
        order.pay(&tx("t1"), 1497, late),
        Err(OrderError::PaymentTooLate)
    );
}

#[test]
fn only_pending_orders_cancel_or_expire_and_only_once() {
    let mut order = order();
    assert_eq!(order.expire(now()), Err(OrderError::NotYetExpired));
    order.cancel(now()).expect("cancels");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert!(order.cancel(now()).is_err());
    assert!(order.expire(now() + Duration::hours(1)).is_err());

    let mut paid = self::order();
    paid.pay(&tx("t9"), 1497, now()).expect("paid");
    assert_eq!(
        paid.cancel(now()),
        Err(OrderError::NotPending {
            status: OrderStatus::Paid
        })
    );
}

#[test]
fn idempotency_keys_are_short_and_plain() {
    assert!(IdempotencyKey::parse("a-Z_09").is_ok());
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse(&"k".repeat(65)).is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert!(IdempotencyKey::parse("ünï").is_err());
}
