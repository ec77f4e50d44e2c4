//! Per-command figures — INFO Commandstats, Errorstats, Latencystats and the
//! Prometheus per-command series — kept as Redis keeps them.
//!
//! Sessions on different arbiters run commands at the same time, so the
//! figures are kept in one shard per arbiter: a session only ever locks its
//! own arbiter's shard, which no other thread touches except an INFO or a
//! metrics sample merging them (an uncontended lock costs ~20 ns, less than
//! the `Instant::now()` the timing itself needs). The shards know nothing of
//! sessions, actors or the wire: they are plain counters and histograms.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

/// Redis' limit on distinct error codes in Errorstats; further codes are
/// counted only in `total_error_replies`.
const ERROR_CODES_MAX: usize = 128;

/// One command's figures (a subcommand is `container|sub`).
#[derive(Clone, Default)]
pub(crate) struct CommandFigures {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Nanoseconds per call, as Redis' `latency-tracking` keeps them.
    pub latency: Option<Histogram<u32>>,
}

impl CommandFigures {
    fn merge(&mut self, other: &CommandFigures) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
        if let Some(h) = &other.latency {
            match &mut self.latency {
                Some(mine) => mine.add(h).expect("same bounds"),
                None => self.latency = Some(h.clone()),
            }
        }
    }

    /// `p` (0–100) in microseconds, with Redis' three decimals.
    pub(crate) fn percentile_usec(&self, p: f64) -> f64 {
        self.latency.as_ref().map_or(0.0, |h| h.value_at_percentile(p) as f64 / 1000.0)
    }
}

/// Which command a figure is for: the address of its entry in a static
/// command table (Herald's `Spec`, or Redis' for commands only Redis has),
/// so the per-command lookup hashes a word, not a name (looking names up
/// cost ~220 instructions per command, callgrind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CommandId(usize);

impl CommandId {
    pub(crate) fn of<T>(entry: &'static T) -> CommandId {
        CommandId(entry as *const T as usize)
    }
}

/// One arbiter's figures while counting (`live`, by command id), or merged
/// for INFO (`commands`, by name, sorted).
#[derive(Default, Clone)]
pub(crate) struct Shard {
    pub commands: BTreeMap<String, CommandFigures>,
    pub errors: BTreeMap<String, u64>,
    pub error_replies: u64,
    live: HashMap<CommandId, (String, CommandFigures), foldhash::fast::FixedState>,
}

impl Shard {
    fn entry(&mut self, id: CommandId, name: &str) -> &mut CommandFigures {
        &mut self.live.entry(id).or_insert_with(|| (name.to_string(), CommandFigures::default())).1
    }

    /// `n` calls of `name` that took `elapsed` together; `failed` if the
    /// command answered an error; `latency`: kept in its histogram too
    /// (Redis' `latency-tracking`).
    pub(crate) fn call(&mut self, id: CommandId, name: &str, n: u64, elapsed: Duration, failed: bool, latency: bool) {
        let figures = self.entry(id, name);
        figures.calls += n;
        figures.usec += elapsed.as_micros() as u64;
        if failed {
            figures.failed += n;
        }
        if !latency {
            return;
        }
        let each = (elapsed.as_nanos() as u64 / n.max(1)).max(1);
        // 1 ns to 1 s at two significant figures, as Redis' hdr_init.
        let h = figures.latency.get_or_insert_with(|| Histogram::new_with_bounds(1, 1_000_000_000, 2).expect("bounds"));
        h.saturating_record_n(each, n as u32);
    }

    /// A command refused before it ran (arity, authentication, ACL,
    /// context).
    pub(crate) fn reject(&mut self, id: CommandId, name: &str) {
        self.entry(id, name).rejected += 1;
    }

    /// An error reply; `code` is its first word (`ERR`, `NOPERM`…).
    pub(crate) fn error(&mut self, code: &str) {
        self.error_replies += 1;
        if let Some(n) = self.errors.get_mut(code) {
            *n += 1;
        } else if self.errors.len() < ERROR_CODES_MAX {
            self.errors.insert(code.to_string(), 1);
        }
    }

    fn merge(&mut self, other: &Shard) {
        let live = other.live.values().map(|(name, figures)| (name, figures));
        for (name, figures) in live.chain(&other.commands) {
            self.commands.entry(name.clone()).or_default().merge(figures);
        }
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
        self.error_replies += other.error_replies;
    }

    pub(crate) fn total_calls(&self) -> u64 {
        self.commands.values().map(|c| c.calls).sum()
    }
}

/// Bytes and system calls on client sockets, all connections together
/// (INFO's `total_net_*_bytes`, `total_reads/writes_processed`): counted by
/// each connection's decoder and writer, one atomic add per read or write.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub input_bytes: AtomicU64,
    pub output_bytes: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl Traffic {
    pub(crate) fn read(&self, bytes: usize) {
        self.input_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, bytes: usize, calls: usize) {
        self.output_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.writes.fetch_add(calls as u64, Ordering::Relaxed);
    }
}

/// Redis' `instantaneous_*` figures: a rate sampled every 100 ms into a
/// ring of 16, the mean of the ring (`STATS_METRIC_SAMPLES`).
#[derive(Default)]
struct Rates {
    last: Option<(std::time::Instant, [u64; 3])>,
    ring: [[f64; 3]; 16],
    next: usize,
}

/// Every arbiter's shard, and when the server started.
pub(crate) struct Stats {
    shards: Box<[Mutex<Shard>]>,
    /// Unix seconds at start (LASTSAVE, `rdb_last_save_time`).
    pub started_unix: u64,
    pub started: std::time::Instant,
    /// INFO's `run_id` (and `master_replid`): 40 hex digits, new each start.
    pub run_id: String,
    rates: Mutex<Rates>,
}

impl Stats {
    pub(crate) fn new(arbiters: usize) -> Stats {
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Stats {
            shards: (0..arbiters.max(1)).map(|_| Mutex::new(Shard::default())).collect(),
            started_unix,
            started: std::time::Instant::now(),
            run_id: run_id(),
            rates: Mutex::default(),
        }
    }

    /// Commands run so far, every shard (cheap: no histogram is merged).
    pub(crate) fn calls(&self) -> u64 {
        (0..self.shards.len())
            .map(|i| {
                let shard = self.shard(i);
                shard.live.values().map(|(_, f)| f.calls).sum::<u64>() + shard.total_calls()
            })
            .sum()
    }

    /// Takes one 100 ms sample of the command and traffic rates.
    pub(crate) fn sample_rates(&self, now: std::time::Instant, t: &Traffic) {
        let totals = [self.calls(), t.input_bytes.load(Ordering::Relaxed), t.output_bytes.load(Ordering::Relaxed)];
        let mut r = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((then, before)) = r.last {
            let secs = now.duration_since(then).as_secs_f64().max(1e-3);
            let i = r.next;
            for k in 0..3 {
                r.ring[i][k] = totals[k].saturating_sub(before[k]) as f64 / secs;
            }
            r.next = (i + 1) % r.ring.len();
        }
        r.last = Some((now, totals));
    }

    /// (ops/s, input bytes/s, output bytes/s), as INFO shows them.
    pub(crate) fn rates(&self) -> (f64, f64, f64) {
        let r = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let n = r.ring.len() as f64;
        let mean = |k: usize| r.ring.iter().map(|s| s[k]).sum::<f64>() / n;
        (mean(0), mean(1), mean(2))
    }

    /// The shard of arbiter `slot`.
    pub(crate) fn shard(&self, slot: usize) -> MutexGuard<'_, Shard> {
        self.shards[slot % self.shards.len()].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All shards merged.
    pub(crate) fn snapshot(&self) -> Shard {
        let mut all = Shard::default();
        for i in 0..self.shards.len() {
            all.merge(&self.shard(i));
        }
        all
    }

    /// CONFIG RESETSTAT (with the traffic counters).
    pub(crate) fn reset(&self, t: &Traffic) {
        for i in 0..self.shards.len() {
            *self.shard(i) = Shard::default();
        }
        for counter in [&t.input_bytes, &t.output_bytes, &t.reads, &t.writes] {
            counter.store(0, Ordering::Relaxed);
        }
        *self.rates.lock().unwrap_or_else(|e| e.into_inner()) = Rates::default();
    }
}

/// 40 random hex digits (SHA-256 of the start time and process id).
fn run_id() -> String {
    use sha2::{Digest, Sha256};
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let seed = format!("{now}-{}-{:p}", std::process::id(), &now);
    Sha256::digest(seed.as_bytes()).iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// The first word of an error text: its Errorstats code.
pub(crate) fn error_code(text: &str) -> &str {
    text.split(' ').next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    static PUBLISH: u8 = 0;
    static PING: u8 = 0;

    #[test]
    fn shards_merge_calls_errors_and_latency() {
        let stats = Stats::new(2);
        let (publish, ping) = (CommandId::of(&PUBLISH), CommandId::of(&PING));
        stats.shard(0).call(publish, "publish", 3, Duration::from_micros(30), false, true);
        stats.shard(1).call(publish, "publish", 1, Duration::from_micros(1000), true, true);
        stats.shard(1).call(ping, "ping", 1, Duration::from_micros(5), false, false);
        stats.shard(1).reject(publish, "publish");
        stats.shard(0).error("ERR");
        stats.shard(1).error("ERR");
        stats.shard(1).error("NOPERM");
        let all = stats.snapshot();
        let p = &all.commands["publish"];
        assert_eq!((p.calls, p.usec, p.rejected, p.failed), (4, 1030, 1, 1));
        // Three calls of 10 µs and one of 1 ms: the median is 10 µs.
        assert!((p.percentile_usec(50.0) - 10.0).abs() < 0.1, "{}", p.percentile_usec(50.0));
        assert!((p.percentile_usec(99.0) - 1000.0).abs() < 10.0, "{}", p.percentile_usec(99.0));
        assert!(all.commands["ping"].latency.is_none() && all.commands["ping"].calls == 1);
        assert_eq!(all.errors["ERR"], 2);
        assert_eq!(all.errors["NOPERM"], 1);
        assert_eq!(all.error_replies, 3);
        assert_eq!(stats.calls(), 5);
        stats.reset(&Traffic::default());
        assert_eq!(stats.snapshot().total_calls(), 0);
    }

    #[test]
    fn rates_are_the_mean_of_sixteen_samples() {
        let (stats, traffic) = (Stats::new(1), Traffic::default());
        let t0 = std::time::Instant::now();
        stats.sample_rates(t0, &traffic);
        static PING: u8 = 0;
        stats.shard(0).call(CommandId::of(&PING), "ping", 160, Duration::from_micros(1), false, false);
        traffic.read(1600);
        stats.sample_rates(t0 + Duration::from_millis(100), &traffic);
        // One sample of 1600 ops/s among sixteen: 100 ops/s.
        let (ops, input, output) = stats.rates();
        assert!((ops - 100.0).abs() < 1e-6 && (input - 1000.0).abs() < 1e-6 && output == 0.0, "{ops} {input}");
        assert_eq!(traffic.reads.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn error_codes_are_capped_as_in_redis() {
        let mut shard = Shard::default();
        for i in 0..200 {
            shard.error(&format!("E{i}"));
        }
        assert_eq!(shard.errors.len(), ERROR_CODES_MAX);
        assert_eq!(shard.error_replies, 200);
        assert_eq!(error_code("WRONGPASS invalid username"), "WRONGPASS");
    }
}
