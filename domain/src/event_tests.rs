//! Unit tests of `event`.

use chrono::Duration;

use super::*;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid") + Duration::minutes(minutes)
}

fn draft() -> Event {
    let new = NewEvent::new("Sale", None, at(0), at(60), None).expect("valid");
    Event {
        id: EventId(1),
        title: new.title,
        description: new.description,
        window: new.window,
        strategy: new.strategy,
        status: EventStatus::Draft,
        created_at: at(-10),
        updated_at: at(-10),
    }
}

#[test]
fn a_new_event_reports_every_broken_rule_at_once() {
    let errors =
        NewEvent::new(" ", Some(&"d".repeat(2001)), at(10), at(10), None).expect_err("invalid");
    let fields: Vec<&str> = errors
        .violations()
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["title", "description", "ends_at"]);
}

#[test]
fn an_event_goes_online_only_with_products() {
    let mut event = draft();
    assert_eq!(event.go_online(0, at(1)), Err(EventError::NoProducts));
    event.go_online(2, at(1)).expect("online");
    assert_eq!(event.status, EventStatus::Online);
    event.go_online(2, at(2)).expect("idempotent");
    assert_eq!(event.updated_at, at(1));
}

#[test]
fn online_and_offline_alternate_but_a_draft_cannot_go_offline() {
    let mut event = draft();
    assert!(matches!(
        event.go_offline(at(1)),
        Err(EventError::IllegalTransition { .. })
    ));
    event.go_online(1, at(1)).expect("online");
    event.go_offline(at(2)).expect("offline");
    event.go_offline(at(3)).expect("idempotent");
    event.go_online(1, at(4)).expect("online again");
    assert_eq!(event.status, EventStatus::Online);
}

#[test]
fn an_online_event_cannot_be_edited() {
    let mut event = draft();
    event.go_online(1, at(1)).expect("online");
    let changes = EventChanges {
        title: Some("New".into()),
        ..EventChanges::default()
    };
    assert_eq!(
        event.edit(&changes, at(2)),
        Err(EventError::EditWhileOnline)
    );
}

#[test]
fn an_edit_keeps_the_window_ordered_against_the_unchanged_end() {
    let mut event = draft();
    let changes = EventChanges {
        starts_at: Some(at(90)),
        ..EventChanges::default()
    };
    let error = event.edit(&changes, at(1)).expect_err("after the end");
    assert!(
        matches!(error, EventError::Validation(ref v) if v.violations()[0].field == "starts_at")
    );
    let changes = EventChanges {
        starts_at: Some(at(30)),
        strategy: Some(Some(Strategy::Buckets)),
        ..EventChanges::default()
    };
    event.edit(&changes, at(2)).expect("valid");
    assert_eq!(event.window.starts_at(), at(30));
    assert_eq!(event.strategy, Some(Strategy::Buckets));
}

#[test]
fn an_event_sells_only_online_and_inside_its_window() {
    let mut event = draft();
    assert!(!event.is_on_sale(at(5)));
    event.go_online(1, at(-1)).expect("online");
    assert!(!event.is_on_sale(at(-1)));
    assert!(event.is_on_sale(at(0)));
    assert!(event.is_on_sale(at(59)));
    assert!(!event.is_on_sale(at(60)));
}
