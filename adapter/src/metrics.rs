//! The Prometheus recorder, installed once per process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The HTTP latency histogram.
pub const HTTP_DURATION: &str = "flash_sale_http_request_duration_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder on first call and returns its handle; later calls
/// (several apps in one test process) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_DURATION.to_owned()),
                    &[
                        0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                        0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("flash_sale_placement_lag_seconds".to_owned()),
                        &[
                            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                            60.0,
                        ],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by method, route and status"
    );
    metrics::describe_counter!(
        "flash_sale_order_attempts_total",
        "Order placements by strategy and outcome"
    );
    metrics::describe_counter!(
        "flash_sale_cache_lookups_total",
        "Catalogue lookups by the layer that answered: local, redis, null, db"
    );
    metrics::describe_counter!(
        "flash_sale_bucket_reservations_total",
        "Reservations by the bucket that gave the units"
    );
    metrics::describe_counter!(
        "flash_sale_bucket_probes_total",
        "Reservations served away from the buyer's home bucket, by serving bucket"
    );
    metrics::describe_counter!(
        "flash_sale_bucket_misses_total",
        "Reservations whose home bucket was short, by home bucket"
    );
    metrics::describe_histogram!(
        "flash_sale_placement_lag_seconds",
        metrics::Unit::Seconds,
        "Async placements: from the 202 to the order written (the consumer's lag)"
    );
    metrics::describe_histogram!(
        "flash_sale_placement_batch_seconds",
        metrics::Unit::Seconds,
        "Async consumer batches by phase: write (the database transaction), settle (the holds ending)"
    );
    metrics::describe_counter!(
        "flash_sale_placements_total",
        "Async placements resolved by the consumer: placed, failed"
    );
}
