//! The Grafana dashboard under `deploy/grafana/` queries only metrics the service
//! exports: each one appears in `GET /metrics` after a sale that exercises it.

use std::collections::BTreeSet;
use std::time::Duration;

use flash_sale_client::{PlaceOrderAnswer, PlacementStatusDto, StrategyDto};
use flash_sale_tests::{Backend, TestApp, one_unit, sale};
use tokio::io::AsyncReadExt;

const DASHBOARD: &str = include_str!("../../../deploy/grafana/flash-sale.json");

/// Every `flash_sale_…` series name in the dashboard's queries.
fn queried_metrics() -> BTreeSet<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("JSON");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("flash_sale_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn the_dashboard_queries_the_service_metrics() {
    let names = queried_metrics();
    for expected in [
        "flash_sale_order_attempts_total",
        "flash_sale_http_request_duration_seconds_bucket",
        "flash_sale_cache_lookups_total",
        "flash_sale_bucket_probes_total",
        "flash_sale_placement_lag_seconds_bucket",
    ] {
        assert!(names.contains(expected), "{expected} not in {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.header_read_timeout = flash_sale::config::HumanDuration(Duration::from_secs(1));
    })
    .await;
    // Sync: attempts, group commit, catalogue lookups.
    let (_, plain) = sale(&t.admin, Some(StrategyDto::Sync), 5, 1, None).await;
    t.buyer("ann").product(plain.id).await.expect("browse");
    t.buyer("ann")
        .place_order(&one_unit(plain.id), None)
        .await
        .expect("sync order");
    // Buckets: one buyer empties her home bucket and is served from the other one.
    let (_, spread) = sale(&t.admin, Some(StrategyDto::Buckets), 4, 4, Some(2)).await;
    for _ in 0..3 {
        t.buyer("bo")
            .place_order(&one_unit(spread.id), None)
            .await
            .expect("bucket order");
    }
    // Async: a placement resolved by the consumer.
    let (_, queued) = sale(&t.admin, Some(StrategyDto::Async), 5, 1, None).await;
    let PlaceOrderAnswer::Accepted(placement) = t
        .buyer("cy")
        .place_order(&one_unit(queued.id), None)
        .await
        .expect("accepted")
    else {
        panic!("async answers 202");
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while t
        .buyer("cy")
        .placement(&placement.id)
        .await
        .expect("placement")
        .status
        == PlacementStatusDto::Queued
    {
        assert!(tokio::time::Instant::now() < deadline, "never resolved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A connection that never sends its request is closed by the header timeout.
    let address = t.anon.base_url().trim_start_matches("http://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut sink))
        .await
        .expect("closed within the header timeout")
        .expect("read");

    let exported = t.anon.metrics().await.expect("metrics");
    let series: BTreeSet<&str> = exported
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing: Vec<String> = queried_metrics()
        .into_iter()
        .filter(|name| !series.contains(name.as_str()))
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{exported}");
    t.stop().await;
}
