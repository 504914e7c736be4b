//! Property tests of the request validators: whatever JSON object arrives — the
//! command's own fields with any values, strangers, nesting — reading it never panics,
//! and it either becomes a command that passes every rule or is refused with 422
//! naming one of the command's fields (or the body).

use flash_sale_adapter::extract::from_json_value;
use flash_sale_client::{
    Checked, ErrorCode, EventCreateCmd, EventPatchCmd, OrderPayCmd, OrderPlaceCmd,
    ProductBucketsCmd, ProductCreateCmd, ProductPatchCmd, ProductStockCmd,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Any JSON value, leaning towards the edges the validators care about.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        prop_oneof![
            Just(1_000_000i64),
            Just(1_000_001),
            Just(10_000_000),
            Just(10_000_001)
        ]
        .prop_map(Value::from),
        Just(json!(1_000_000_000_000_i64)),
        Just(json!(1_000_000_000_001_i64)),
        any::<f64>().prop_map(Value::from),
        (0i32..2000).prop_map(|n| json!(f64::from(n))),
        "\\PC{0,210}".prop_map(Value::from),
        "[ \t]{0,3}".prop_map(Value::from),
        prop_oneof![
            Just("2026-12-06T10:00:00Z"),
            Just("2027-01-01T00:00:00+02:00"),
            Just("0000-01-01T00:00:00Z"),
            Just("+10000-01-01T00:00:00Z"),
            Just("1969-12-31T23:59:59Z"),
            Just("sync"),
            Just("buckets"),
            Just("async"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object over `fields` (each present or not) and perhaps a stranger.
fn body(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(prop::option::of(any_value()), fields.len()),
        prop::option::of(("[a-z]{1,8}", any_value())),
    )
        .prop_map(move |(values, extra)| {
            let mut object = Map::new();
            for (field, value) in fields.iter().zip(values) {
                if let Some(value) = value {
                    object.insert((*field).to_owned(), value);
                }
            }
            if let Some((key, value)) = extra {
                object.entry(key).or_insert(value);
            }
            Value::Object(object)
        })
}

/// Reads `value` as `T`: accepted values pass every rule, refusals are 422 naming a
/// field of `T` or the body.
#[expect(
    clippy::needless_pass_by_value,
    reason = "proptest hands each case its value"
)]
fn judged<T: DeserializeOwned + Checked>(
    value: Value,
    fields: &[&str],
) -> Result<(), TestCaseError> {
    match from_json_value::<T>(value.clone()) {
        Ok(cmd) => prop_assert!(cmd.check().is_ok(), "accepted but invalid: {value}"),
        Err(error) => {
            let body = error.body();
            prop_assert_eq!(body.code, ErrorCode::ValidationFailed, "{}", value);
            let details = body.details.clone().unwrap_or_default();
            prop_assert!(!details.is_empty(), "no details for {value}");
            for detail in details {
                prop_assert!(
                    detail.field == "body" || fields.contains(&detail.field.as_str()),
                    "{} is not a field of this command ({value})",
                    detail.field
                );
            }
        }
    }
    Ok(())
}

const EVENT: &[&str] = &["title", "description", "starts_at", "ends_at", "strategy"];
const PRODUCT: &[&str] = &[
    "title",
    "description",
    "original_price",
    "flash_price",
    "stock",
    "per_user_limit",
    "bucket_count",
];
const PRODUCT_PATCH: &[&str] = &[
    "title",
    "description",
    "original_price",
    "flash_price",
    "per_user_limit",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn event_commands(value in body(EVENT)) {
        judged::<EventCreateCmd>(value.clone(), EVENT)?;
        judged::<EventPatchCmd>(value, EVENT)?;
    }

    #[test]
    fn product_commands(value in body(PRODUCT)) {
        judged::<ProductCreateCmd>(value.clone(), PRODUCT)?;
        judged::<ProductPatchCmd>(value, PRODUCT_PATCH)?;
    }

    #[test]
    fn order_and_stock_commands(
        value in body(&["product_id", "quantity", "transaction_id", "amount", "delta", "count"]),
    ) {
        judged::<OrderPlaceCmd>(value.clone(), &["product_id", "quantity"])?;
        judged::<OrderPayCmd>(value.clone(), &["transaction_id", "amount"])?;
        judged::<ProductStockCmd>(value.clone(), &["delta"])?;
        judged::<ProductBucketsCmd>(value, &["count"])?;
    }
}
