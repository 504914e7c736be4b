//! Property tests of the value types: whatever the input, parsing never panics, and
//! it either builds a value that keeps its rule or refuses with the field named.

use flash_sale_domain::allocation::{Allocation, BucketPart};
use flash_sale_domain::order::{IdempotencyKey, OrderId, TransactionId};
use flash_sale_domain::placement::PlacementId;
use flash_sale_domain::product::{BucketCount, MAX_PRICE, PerUserLimit, Pricing};
use flash_sale_domain::text::{Description, Title};
use flash_sale_domain::{UserId, ValidationErrors};
use proptest::prelude::*;

/// The one field a refusal names.
fn field_of(errors: &ValidationErrors) -> Vec<&str> {
    errors
        .violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

/// Text of any characters, sometimes long, sometimes blank.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,300}",
        "[ \t\n\u{3000}\u{a0}]{0,5}",
        ".{190,210}",
        ".{1990,2010}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_title_is_1_to_200_characters_and_not_blank(text in any_text()) {
        let chars = text.chars().count();
        match Title::parse("title", &text) {
            Ok(title) => {
                prop_assert!((1..=200).contains(&chars));
                prop_assert!(!text.trim().is_empty());
                prop_assert_eq!(title.as_str(), text.as_str());
            }
            Err(e) => {
                prop_assert!(chars > 200 || text.trim().is_empty());
                prop_assert_eq!(field_of(&e), ["title"]);
            }
        }
    }

    #[test]
    fn a_description_is_at_most_2000_characters(text in any_text()) {
        match Description::parse("description", &text) {
            Ok(description) => prop_assert_eq!(description.as_str(), text.as_str()),
            Err(e) => {
                prop_assert!(text.chars().count() > 2000);
                prop_assert_eq!(field_of(&e), ["description"]);
            }
        }
    }

    #[test]
    fn user_and_transaction_ids_are_1_to_64_characters(text in any_text()) {
        let fits = (1..=64).contains(&text.chars().count());
        match UserId::parse(&text) {
            Ok(id) => prop_assert!(fits && id.as_str() == text),
            Err(e) => prop_assert!(!fits && field_of(&e) == ["sub"]),
        }
        match TransactionId::parse(&text) {
            Ok(id) => prop_assert!(fits && id.as_str() == text),
            Err(e) => prop_assert!(!fits && field_of(&e) == ["transaction_id"]),
        }
    }

    #[test]
    fn an_idempotency_key_is_1_to_64_plain_characters(
        text in prop_oneof![any_text(), "[A-Za-z0-9_-]{0,70}"],
    ) {
        let plain = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        match IdempotencyKey::parse(&text) {
            Ok(key) => prop_assert!(plain && key.as_str() == text),
            Err(e) => prop_assert!(!plain && field_of(&e) == ["Idempotency-Key"]),
        }
    }

    #[test]
    fn prices_are_1_to_the_maximum_and_the_sale_price_is_not_above_the_list_price(
        original in prop_oneof![any::<i64>(), -2..MAX_PRICE + 2],
        flash in prop_oneof![any::<i64>(), -2..MAX_PRICE + 2],
    ) {
        let in_range = |p: i64| (1..=MAX_PRICE).contains(&p);
        match Pricing::new(original, flash) {
            Ok(pricing) => {
                prop_assert!(in_range(original) && in_range(flash) && flash <= original);
                prop_assert_eq!((pricing.original(), pricing.flash()), (original, flash));
            }
            Err(e) => {
                prop_assert!(!(in_range(original) && in_range(flash) && flash <= original));
                for field in field_of(&e) {
                    prop_assert!(field == "original_price" || field == "flash_price");
                }
            }
        }
    }

    #[test]
    fn limits_and_bucket_counts_keep_their_ranges(value in any::<u32>()) {
        match PerUserLimit::new(value) {
            Ok(limit) => prop_assert!((1..=100).contains(&limit.get())),
            Err(e) => prop_assert!(!(1..=100).contains(&value) && field_of(&e) == ["per_user_limit"]),
        }
        match BucketCount::new("count", value) {
            Ok(count) => prop_assert!((1..=1024).contains(&count.get())),
            Err(e) => prop_assert!(!(1..=1024).contains(&value) && field_of(&e) == ["count"]),
        }
    }

    #[test]
    fn ids_from_outside_parse_or_are_refused_and_our_own_round_trip(text in any_text()) {
        if let Some(id) = OrderId::parse(&text) {
            prop_assert_eq!(OrderId::parse(id.as_str()), Some(id.clone()));
        }
        if let Some(id) = PlacementId::parse(&text) {
            prop_assert_eq!(PlacementId::parse(id.as_str()), Some(id.clone()));
        }
        let order = OrderId::generate();
        prop_assert_eq!(OrderId::parse(order.as_str()), Some(order));
    }

    #[test]
    fn an_allocation_read_back_is_the_one_written_and_nonsense_is_refused(
        text in prop_oneof![
            any_text(),
            "([0-9]{1,11}:[0-9]{1,11},?){0,5}",
            // Stored text with units near the top of their range.
            prop::collection::vec((0u32..2048, any::<u32>()), 1..4).prop_map(|parts| {
                parts.iter().map(|(b, u)| format!("{b}:{u}")).collect::<Vec<_>>().join(",")
            }),
        ],
        parts in prop::collection::vec((0u32..2048, 1u32..5000), 1..6),
    ) {
        // Whatever the text, reading it does not panic; what it reads keeps the rules.
        if let Some(read) = Allocation::parse(&text) {
            prop_assert!(!read.parts().is_empty());
            prop_assert!(read.parts().iter().all(|p| p.units > 0));
            prop_assert_eq!(
                u64::from(read.quantity()),
                read.parts().iter().map(|p| u64::from(p.units)).sum::<u64>()
            );
        }
        let parts: Vec<BucketPart> = parts
            .into_iter()
            .map(|(bucket_no, units)| BucketPart { bucket_no, units })
            .collect();
        if let Some(allocation) = Allocation::from_parts(parts) {
            prop_assert_eq!(Allocation::parse(&allocation.encode()), Some(allocation));
        }
    }
}
