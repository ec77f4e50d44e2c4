//! The benchmark's scenarios, shortened, against Herald and redis-server:
//! correctness counters only (no duplicates, reorders or losses; something
//! delivered), never timings. The figures come from `cargo bench --bench
//! pubsub` (BENCHMARKS.md).

mod support;

use std::time::Duration;

use herald_bench::{run, scenarios};
use support::{herald, redis};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_scenario_runs_clean_on_both_servers() {
    let servers = [("herald", herald()), ("redis", redis())];
    for mut sc in scenarios() {
        sc.duration = Duration::from_millis(200);
        sc.idle_patterns = sc.idle_patterns.min(2_000);
        sc.subscribers = sc.subscribers.min(200);
        for (name, server) in &servers {
            let report = run(&server.addr(), &sc).await.unwrap_or_else(|e| panic!("{} on {name}: {e}", sc.name));
            let what = format!("{} on {name}: {report:?}", sc.name);
            assert!(report.published > 0 && report.delivered > 0, "{what}");
            assert_eq!((report.duplicates, report.reorders, report.lost), (0, 0, 0), "{what}");
        }
    }
}
