//! Prometheus metrics on `metrics-port` (metrics + its Prometheus exporter):
//! the figures INFO reports, plus a histogram of publish → enqueue latency.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::broker::Census;

/// Seconds from a PUBLISH (or pipelined run) being taken up by its session
/// to its deliveries being queued for every subscriber.
pub const PUBLISH_SECONDS: &str = "herald_publish_enqueue_seconds";
pub const PUBLISHED: &str = "herald_published_messages_total";
pub const DELIVERED: &str = "herald_delivered_messages_total";
pub const DROPPED: &str = "herald_dropped_slow_subscribers_total";

/// Starts the HTTP endpoint (its own thread) and installs the recorder.
pub fn serve(addr: impl std::net::ToSocketAddrs) -> Result<(), String> {
    let addr = addr.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let buckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Full(PUBLISH_SECONDS.into()), &buckets)
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| format!("{addr}: {e}"))?;
    metrics::describe_histogram!(PUBLISH_SECONDS, metrics::Unit::Seconds, "PUBLISH to deliveries queued");
    metrics::describe_counter!(PUBLISHED, "Messages published (PUBLISH and SPUBLISH)");
    metrics::describe_counter!(DELIVERED, "Deliveries queued to subscribers");
    metrics::describe_counter!(DROPPED, "Subscribers disconnected for their output limit");
    Ok(())
}

/// Copies the census into gauges once a second (a sample for scraping, not
/// a synchronisation), on its own thread, for as long as the process runs.
pub fn sample(census: Arc<Census>) {
    let _ = std::thread::Builder::new().name("herald-metrics".into()).spawn(move || loop {
        let gauges = [
            ("herald_connected_clients", census.sessions.load(Ordering::Relaxed)),
            ("herald_channel_actors", census.channels.load(Ordering::Relaxed)),
            ("herald_pattern_subscriptions", census.patterns.load(Ordering::Relaxed)),
            ("herald_output_bytes_queued", census.queued_bytes.load(Ordering::Relaxed)),
        ];
        for (name, value) in gauges {
            metrics::gauge!(name).set(value as f64);
        }
        std::thread::sleep(Duration::from_secs(1));
    });
}
