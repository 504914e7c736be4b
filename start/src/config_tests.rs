//! Unit tests of `config`.

use std::io::Write;

use super::*;

#[test]
fn defaults_need_no_file_and_no_server() {
    let settings = Settings::default();
    assert_eq!(settings.server.bind, "127.0.0.1:8080");
    assert!(settings.database.url.expose().starts_with("sqlite:"));
    assert!(settings.redis.url.expose().is_empty());
    assert_eq!(settings.mq.backend, MqBackend::Embedded);
    assert_eq!(settings.orders.payment_timeout.0, Duration::from_mins(15));
    assert!(settings.auth.jwt_secret.is_none());
}

#[test]
fn a_file_sets_durations_strategies_and_overrides() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(
        file,
        "[orders]\npayment_timeout = \"3s\"\n[ordering]\ndefault_strategy = \"buckets\"\n\
         [ordering.overrides]\n\"7\" = \"async\"\n[cache]\nlocal_ttl = \"250ms\""
    )
    .expect("write");
    let settings = Settings::load(Some(file.path())).expect("loads");
    assert_eq!(settings.orders.payment_timeout.0, Duration::from_secs(3));
    assert_eq!(settings.cache.local_ttl.0, Duration::from_millis(250));
    let config = settings.ordering.to_config().expect("valid");
    assert_eq!(config.default_strategy, Strategy::Buckets);
    assert_eq!(config.overrides.get(&EventId(7)), Some(&Strategy::Async));
}

#[test]
fn a_bad_strategy_is_refused_with_its_key() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    writeln!(file, "[ordering]\ndefault_strategy = \"fast\"").expect("write");
    let error = Settings::load(Some(file.path())).expect_err("invalid");
    assert!(format!("{error:#}").contains("ordering.default_strategy"));
}
