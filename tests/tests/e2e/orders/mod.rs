//! Orders under the sync strategy: no oversell under concurrency, idempotency,
//! per-user limits, payment, cancel, expiry and the inventory ledger — checked from
//! the database rows afterwards. One file per concern.

mod access;
mod durability;
mod idempotency;
mod lifecycle;
mod selling;

use flash_sale_client::{
    ClientError, ErrorCode, FlashSaleClient, OrderDto, OrderPlaceCmd, PlaceOrderAnswer,
};

fn cmd(product_id: i64, quantity: u32) -> OrderPlaceCmd {
    OrderPlaceCmd {
        product_id,
        quantity,
    }
}

fn created(answer: PlaceOrderAnswer) -> OrderDto {
    match answer {
        PlaceOrderAnswer::Created(order) => order,
        PlaceOrderAnswer::Accepted(p) => panic!("expected an order, got placement {p:?}"),
    }
}

/// Sends until the answer is not a 503 or a transport error, with the same key.
async fn place_with_retries(
    buyer: &FlashSaleClient,
    product_id: i64,
    quantity: u32,
    key: &str,
) -> Result<OrderDto, ErrorCode> {
    flash_sale_tests::place_until_answered(buyer, product_id, quantity, Some(key))
        .await
        .map(created)
}

#[track_caller]
fn assert_code(result: Result<impl std::fmt::Debug, ClientError>, code: ErrorCode) {
    match result {
        Err(e) => assert_eq!(e.code(), Some(code), "{e}"),
        Ok(v) => panic!("expected {code}, got {v:?}"),
    }
}
