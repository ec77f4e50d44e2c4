//! Prometheus metrics on `metrics-port` (metrics + its Prometheus exporter):
//! the figures INFO reports, plus a histogram of publish → enqueue latency.
//!
//! Every series is registered when the endpoint starts — counters at 0, a
//! per-command series for every command Herald has — so a fresh server's
//! page already lists everything a dashboard or alert refers to. The
//! per-command figures are copied from the same `Stats` INFO Commandstats
//! and Latencystats print, once a second, so the two never disagree by more
//! than one sample. So are the publish, delivery and drop counters, from the
//! census INFO reads: a `counter!` on the publish path looked its series up
//! per call (about 60 callgrind instructions per delivery at 1 → 1, each).
//! Only the publish latency histogram is recorded where it happens, through
//! a handle taken once, and not at all (no clock read) without the endpoint.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use crate::cluster::MeshFigures;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::broker::Census;
use crate::stats::Stats;

/// Seconds from a PUBLISH (or pipelined run) being taken up by its session
/// to its deliveries being queued for every subscriber.
const PUBLISH_SECONDS: &str = "herald_publish_enqueue_seconds";
const PUBLISHED: &str = "herald_published_messages_total";
const DELIVERED: &str = "herald_delivered_messages_total";
const DROPPED: &str = "herald_dropped_slow_subscribers_total";

/// The publish latency histogram, once the endpoint is up.
static PUBLISH_HISTOGRAM: OnceLock<metrics::Histogram> = OnceLock::new();

/// Records a publish (or run) taken up at `started` whose deliveries are
/// all queued now, if the endpoint runs.
pub(crate) fn published_since(started: tokio::time::Instant) {
    if let Some(histogram) = PUBLISH_HISTOGRAM.get() {
        histogram.record(started.elapsed().as_secs_f64());
    }
}

const COMMANDS: &str = "herald_commands_total";
const COMMAND_MICROS: &str = "herald_command_duration_microseconds_total";
const REJECTED: &str = "herald_commands_rejected_total";
const FAILED: &str = "herald_commands_failed_total";
const LATENCY: &str = "herald_command_latency_microseconds";
const ERRORS: &str = "herald_error_replies_total";
const EVICTED: &str = "herald_evicted_clients_total";

/// The gauges copied from the census: name, help, unit, reading.
type Gauge = (&'static str, &'static str, Unit, fn(&Census) -> usize);

const GAUGES: &[Gauge] = &[
    ("herald_connected_clients", "Client connections", Unit::Count, |c| c.sessions.load(Ordering::Relaxed)),
    ("herald_channel_actors", "Channel actors alive", Unit::Count, |c| c.channels.load(Ordering::Relaxed)),
    ("herald_pattern_subscriptions", "Pattern subscriptions", Unit::Count, |c| c.patterns.load(Ordering::Relaxed)),
    ("herald_output_queued_bytes", "Output queued to clients, not yet written", Unit::Bytes, |c| {
        c.queued_bytes.load(Ordering::Relaxed)
    }),
    ("herald_monitors", "Connections in MONITOR mode", Unit::Count, |c| c.monitors.load(Ordering::Relaxed)),
];

/// Redis' Latencystats percentiles.
const QUANTILES: [(f64, &str); 3] = [(50.0, "0.5"), (99.0, "0.99"), (99.9, "0.999")];

/// Starts the HTTP endpoint (its own thread), installs the recorder and
/// registers every series, those of each command in `commands` (full
/// names, `client|list`) among them.
pub(crate) fn serve(addr: impl std::net::ToSocketAddrs, commands: Vec<String>) -> Result<(), String> {
    let addr = addr.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let buckets = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Full(PUBLISH_SECONDS.into()), &buckets)
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| format!("{addr}: {e}"))?;
    register(commands);
    let _ = PUBLISH_HISTOGRAM.set(metrics::histogram!(PUBLISH_SECONDS));
    Ok(())
}

fn register(commands: Vec<String>) {
    describe_histogram!(PUBLISH_SECONDS, Unit::Seconds, "PUBLISH to deliveries queued");
    describe_counter!(PUBLISHED, Unit::Count, "Messages published (PUBLISH and SPUBLISH)");
    describe_counter!(DELIVERED, Unit::Count, "Deliveries queued to subscribers");
    describe_counter!(DROPPED, Unit::Count, "Subscribers disconnected for their output limit");
    describe_counter!(EVICTED, Unit::Count, "Clients closed for maxmemory-clients");
    describe_counter!(COMMANDS, Unit::Count, "Commands run, by command (INFO Commandstats calls)");
    describe_counter!(COMMAND_MICROS, Unit::Microseconds, "Time spent in commands, by command (INFO usec)");
    describe_counter!(REJECTED, Unit::Count, "Commands refused before running, by command");
    describe_counter!(FAILED, Unit::Count, "Commands that answered an error, by command");
    describe_counter!(ERRORS, Unit::Count, "Error replies, by error code (INFO Errorstats)");
    describe_gauge!(LATENCY, Unit::Microseconds, "Per-command latency percentiles (INFO Latencystats)");
    describe_gauge!("herald_build_info", "Herald's version (always 1)");
    describe_gauge!("herald_uptime_seconds", Unit::Seconds, "Seconds since the server started");
    for (name, help, unit, _) in GAUGES {
        describe_gauge!(*name, *unit, *help);
        metrics::gauge!(*name).set(0.0);
    }
    for name in [PUBLISHED, DELIVERED, DROPPED, EVICTED] {
        metrics::counter!(name).absolute(0);
    }
    metrics::gauge!("herald_build_info", "version" => env!("CARGO_PKG_VERSION"), "redis_version" => crate::redis::VERSION).set(1.0);
    for name in commands {
        for series in [COMMANDS, COMMAND_MICROS, REJECTED, FAILED] {
            metrics::counter!(series, "cmd" => name.clone()).absolute(0);
        }
        for (_, q) in QUANTILES {
            metrics::gauge!(LATENCY, "cmd" => name.clone(), "quantile" => q).set(0.0);
        }
    }
    metrics::counter!(ERRORS, "code" => "ERR").absolute(0);
}

/// Copies the census and the command figures into the registry once a
/// second (a sample for scraping, not a synchronisation), on its own
/// thread, for as long as the process runs.
pub(crate) fn sample(census: Arc<Census>, stats: Arc<Stats>, mesh: Option<Arc<MeshFigures>>) {
    let _ = std::thread::Builder::new().name("herald-metrics".into()).spawn(move || loop {
        if let Some(mesh) = &mesh {
            for (name, counter) in [
                ("herald_cluster_publishes_forwarded_total", &mesh.forwarded),
                ("herald_cluster_publishes_dropped_total", &mesh.dropped),
                ("herald_cluster_links_buffer_limit_exceeded_total", &mesh.limit_exceeded),
            ] {
                metrics::counter!(name).absolute(counter.load(Ordering::Relaxed));
            }
            metrics::gauge!("herald_cluster_links_up").set(mesh.links_up() as f64);
            metrics::counter!("herald_cluster_maps_applied_total").absolute(mesh.maps_applied.load(Ordering::Relaxed));
            for (name, gauge) in
                [("herald_cluster_members", &mesh.members), ("herald_cluster_slots_owned", &mesh.slots_owned)]
            {
                metrics::gauge!(name).set(gauge.load(Ordering::Relaxed) as f64);
            }
            metrics::gauge!("herald_cluster_epoch").set(mesh.epoch.load(Ordering::Relaxed) as f64);
        }
        for (name, _, _, read) in GAUGES {
            metrics::gauge!(*name).set(read(&census) as f64);
        }
        for (name, counter) in [
            (PUBLISHED, &census.published),
            (DELIVERED, &census.delivered),
            (DROPPED, &census.dropped_slow),
            (EVICTED, &census.evicted_clients),
        ] {
            metrics::counter!(name).absolute(counter.load(Ordering::Relaxed) as u64);
        }
        metrics::gauge!("herald_uptime_seconds").set(stats.started.elapsed().as_secs_f64().floor());
        let all = stats.snapshot();
        for (name, c) in &all.commands {
            metrics::counter!(COMMANDS, "cmd" => name.clone()).absolute(c.calls);
            metrics::counter!(COMMAND_MICROS, "cmd" => name.clone()).absolute(c.usec);
            metrics::counter!(REJECTED, "cmd" => name.clone()).absolute(c.rejected);
            metrics::counter!(FAILED, "cmd" => name.clone()).absolute(c.failed);
            for (p, q) in QUANTILES {
                metrics::gauge!(LATENCY, "cmd" => name.clone(), "quantile" => q).set(c.percentile_usec(p));
            }
        }
        for (code, n) in &all.errors {
            metrics::counter!(ERRORS, "code" => code.clone()).absolute(*n);
        }
        std::thread::sleep(Duration::from_secs(1));
    });
}
