//! Unit tests of `product`.

use super::*;

fn spec() -> ProductSpec<'static> {
    ProductSpec {
        title: "Phone",
        description: None,
        original_price: 1000,
        flash_price: 500,
        stock: 100,
        per_user_limit: 2,
        bucket_count: 1,
    }
}

fn product() -> Product {
    let new = NewProduct::new(EventId(1), &spec()).expect("valid");
    let now = DateTime::from_timestamp(1_800_000_000, 0).expect("valid");
    Product {
        id: ProductId(1),
        event_id: new.event_id,
        title: new.title,
        description: new.description,
        pricing: new.pricing,
        stock_total: new.stock,
        per_user_limit: new.per_user_limit,
        bucket_count: new.bucket_count,
        status: ProductStatus::Online,
        created_at: now,
        updated_at: now,
    }
}

fn fields(errors: &ValidationErrors) -> Vec<&str> {
    errors
        .violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

#[test]
fn the_flash_price_may_not_exceed_the_original() {
    assert!(Pricing::new(100, 100).is_ok());
    let errors = Pricing::new(100, 101).expect_err("too high");
    assert_eq!(fields(&errors), ["flash_price"]);
    let errors = Pricing::new(0, 0).expect_err("zero");
    assert_eq!(fields(&errors), ["original_price", "flash_price"]);
}

#[test]
fn a_new_product_checks_every_range() {
    let bad = ProductSpec {
        stock: 0,
        per_user_limit: 101,
        bucket_count: 1025,
        ..spec()
    };
    let errors = NewProduct::new(EventId(1), &bad).expect_err("invalid");
    assert_eq!(fields(&errors), ["stock", "per_user_limit", "bucket_count"]);
    let big = ProductSpec {
        stock: MAX_STOCK + 1,
        ..spec()
    };
    assert!(NewProduct::new(EventId(1), &big).is_err());
}

#[test]
fn an_edit_checks_prices_against_the_unchanged_one() {
    let mut product = product();
    let now = product.updated_at;
    let changes = ProductChanges {
        flash_price: Some(2000),
        ..ProductChanges::default()
    };
    let error = product.edit(&changes, now).expect_err("above original");
    assert!(matches!(error, ProductError::Validation(ref v) if fields(v) == ["flash_price"]));
    let changes = ProductChanges {
        original_price: Some(3000),
        flash_price: Some(2000),
        per_user_limit: Some(5),
        ..ProductChanges::default()
    };
    product.edit(&changes, now).expect("valid");
    assert_eq!(product.pricing.flash(), 2000);
    assert_eq!(product.per_user_limit.get(), 5);
}
