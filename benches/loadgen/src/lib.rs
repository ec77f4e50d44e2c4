//! A pub/sub load generator for any RESP address.
//!
//! Subscribers (channel or pattern) read as fast as they can; publishers
//! send pipelined PUBLISH batches for a fixed time. Every payload carries
//! its publisher, sequence number and send time, so the subscribers measure
//! latency and count duplicates, reorders and losses against what the
//! PUBLISH replies promised.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use herald_client::{encode_command, encode_command_into};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// One load shape.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub subscribers: usize,
    /// Subscribers use `PSUBSCRIBE bench:*` instead of a channel each.
    pub pattern_subscribers: bool,
    /// Channels published to (subscriber i listens on channel i % channels).
    pub channels: usize,
    pub publishers: usize,
    pub pipeline: usize,
    pub payload: usize,
    /// Non-matching patterns held by one extra connection.
    pub idle_patterns: usize,
    /// Shard channels: SPUBLISH and SSUBSCRIBE.
    pub shard: bool,
    /// Channel names start with this (`bench:` by default; a cluster
    /// benchmark gives a `{hash tag}` to put them in one node's slot).
    pub prefix: String,
    pub duration: Duration,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            subscribers: 1,
            pattern_subscribers: false,
            channels: 1,
            publishers: 1,
            pipeline: 1,
            payload: 64,
            idle_patterns: 0,
            shard: false,
            prefix: "bench:".into(),
            duration: Duration::from_secs(3),
        }
    }
}

impl Scenario {
    fn channel(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The deliveries `per_channel` publishes owe: each to every
    /// subscriber of its channel (subscriber i listens on channel
    /// i % channels), or to every pattern subscriber.
    pub fn expected(&self, per_channel: &[u64]) -> u64 {
        per_channel
            .iter()
            .enumerate()
            .map(|(ch, n)| {
                let listeners = if self.pattern_subscribers {
                    self.subscribers
                } else {
                    (0..self.subscribers).filter(|i| i % self.channels == ch).count()
                };
                n * listeners as u64
            })
            .sum()
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub published: u64,
    pub published_per_sec: f64,
    /// Deliveries PUBLISH replies promised.
    pub expected: u64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub duplicates: u64,
    pub reorders: u64,
    pub lost: i64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "published={} published/s={:.0} delivered={} deliveries/s={:.0} p50_us={:.1} p99_us={:.1} \
             p999_us={:.1} max_us={:.1} duplicates={} reorders={} lost={}",
            self.published,
            self.published_per_sec,
            self.delivered,
            self.deliveries_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.duplicates,
            self.reorders,
            self.lost
        )
    }
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: BytesMut::with_capacity(256 * 1024) })
    }

    async fn frame(&mut self) -> std::io::Result<BytesFrame> {
        loop {
            if let Some(frame) = self.buffered()? {
                return Ok(frame);
            }
            self.fill().await?;
        }
    }

    /// The next whole frame already read, if any.
    fn buffered(&mut self) -> std::io::Result<Option<BytesFrame>> {
        Ok(decode_bytes_mut(&mut self.buf).map_err(std::io::Error::other)?.map(|(frame, _, _)| frame))
    }

    /// Reads what the socket has (waiting for something).
    async fn fill(&mut self) -> std::io::Result<()> {
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

struct SubscriberResult {
    delivered: u64,
    /// When (since the epoch) the last message arrived.
    last_at: Duration,
    duplicates: u64,
    reorders: u64,
    latency: Histogram<u64>,
}

/// Parses `publisher:seq:sent_nanos:` from the front of a payload (digits
/// read as bytes: a UTF-8 check and `str::parse` per field were 5 % of
/// the load generator's time at fan-out).
fn header(payload: &[u8]) -> Option<(usize, u64, u64)> {
    let mut parts = payload.splitn(4, |b| *b == b':');
    let mut num = || {
        let digits = parts.next().filter(|d| !d.is_empty())?;
        digits
            .iter()
            .try_fold(0u64, |n, d| d.is_ascii_digit().then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?)
    };
    Some((num()? as usize, num()?, num()?))
}

async fn subscriber(
    addr: String,
    cmd: Vec<u8>,
    epoch: Instant,
    publishers: usize,
    listens: Listens,
    ready: mpsc::UnboundedSender<()>,
    published: Arc<OnceLock<Vec<u64>>>,
) -> std::io::Result<SubscriberResult> {
    let mut c = Conn::open(&addr).await?;
    c.stream.write_all(&cmd).await?;
    // Once confirmed, everything published is ours to receive.
    c.frame().await?;
    let _ = ready.send(());
    let mut r = SubscriberResult {
        delivered: 0,
        last_at: Duration::ZERO,
        duplicates: 0,
        reorders: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    };
    let mut last = vec![None::<u64>; publishers];
    // One clock reading and no timer per read, not per message: what one
    // read brings arrived together, and at fan-out the load generator's
    // own per-message work (a timer, two clock readings) was CPU the
    // servers under test did not get (perf: 5 % of its time in
    // clock_gettime alone).
    let mut now = epoch.elapsed();
    // Reads that brought nothing for a while, since publishing ended.
    let mut quiet = 0;
    loop {
        while let Some(frame) = c.buffered()? {
            let BytesFrame::Array(items) = frame else { continue };
            let Some(BytesFrame::BulkString(payload)) = items.last() else { continue };
            let Some((p, seq, sent)) = header(payload) else { continue };
            let _ = r.latency.record(((now.as_nanos() as u64).saturating_sub(sent) / 1000).max(1));
            r.delivered += 1;
            r.last_at = now;
            match last[p] {
                Some(prev) if seq == prev => r.duplicates += 1,
                Some(prev) if seq < prev => r.reorders += 1,
                _ => last[p] = Some(seq),
            }
        }
        // Done once publishing has ended and a read has waited QUIET in
        // vain, if everything owed is here (a late duplicate would have
        // come within that); if not, after GRACE of silence. A server's
        // backlog is waited for while it keeps coming, and only what
        // never arrives is counted lost.
        match tokio::time::timeout(QUIET, c.fill()).await {
            Ok(read) => {
                read?;
                quiet = 0;
            }
            Err(_) => match published.get().map(|per_channel| listens.owed(per_channel)) {
                Some(owed) if r.delivered >= owed => return Ok(r),
                Some(_) => {
                    quiet += 1;
                    if quiet * QUIET >= GRACE {
                        return Ok(r);
                    }
                }
                None => {}
            },
        }
        now = epoch.elapsed();
    }
}

/// How long a subscriber's read waits before it looks again whether
/// publishing has ended (and, if it has, whether it is done).
const QUIET: Duration = Duration::from_millis(300);
/// How long, once publishing has ended, a subscriber still owed messages
/// waits with nothing arriving before it counts them lost.
const GRACE: Duration = Duration::from_secs(3);

/// What one subscriber listens to.
#[derive(Debug, Clone, Copy)]
enum Listens {
    Channel(usize),
    Every,
}

impl Listens {
    /// Messages owed, given the publishes to each channel.
    fn owed(self, per_channel: &[u64]) -> u64 {
        match self {
            Listens::Channel(ch) => per_channel[ch],
            Listens::Every => per_channel.iter().sum(),
        }
    }
}

async fn publisher(
    addr: String,
    me: usize,
    s: Scenario,
    epoch: Instant,
    deadline: Instant,
) -> std::io::Result<(u64, u64, Vec<u64>)> {
    let mut c = Conn::open(&addr).await?;
    let (mut published, mut promised, mut seq) = (0u64, 0u64, 0u64);
    let mut per_channel = vec![0u64; s.channels];
    let mut wire = Vec::new();
    while Instant::now() < deadline {
        wire.clear();
        for _ in 0..s.pipeline {
            let head = format!("{me}:{seq}:{}:", epoch.elapsed().as_nanos());
            let mut payload = head.into_bytes();
            payload.resize(s.payload.max(payload.len()), b'x');
            per_channel[(seq as usize + me) % s.channels] += 1;
            let ch = s.channel((seq as usize + me) % s.channels);
            let verb: &[u8] = if s.shard { b"SPUBLISH" } else { b"PUBLISH" };
            encode_command_into(&[verb, ch.as_bytes(), &payload], &mut wire);
            seq += 1;
        }
        c.stream.write_all(&wire).await?;
        for _ in 0..s.pipeline {
            if let BytesFrame::Integer(n) = c.frame().await? {
                promised += n as u64;
            }
            published += 1;
        }
    }
    Ok((published, promised, per_channel))
}

/// Holds `n` non-matching patterns on one connection; returned so the
/// caller decides when to let them go.
pub async fn idle_patterns(addr: &str, n: usize) -> std::io::Result<Option<TcpStream>> {
    if n == 0 {
        return Ok(None);
    }
    let mut c = Conn::open(addr).await?;
    let names: Vec<String> = (0..n).map(|i| format!("idle:{i}:*")).collect();
    for chunk in names.chunks(1000) {
        let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
        args.extend(chunk.iter().map(|s| s.as_bytes()));
        c.stream.write_all(&encode_command(&args)).await?;
        for _ in 0..chunk.len() {
            c.frame().await?;
        }
    }
    Ok(Some(c.stream))
}

/// Runs `s` against `addr`.
pub async fn run(addr: &str, s: &Scenario) -> std::io::Result<Report> {
    run_on(&[addr.to_string()], &[addr.to_string()], s).await
}

/// Runs `s` with publishers spread round robin over `publish_at` and
/// subscribers over `subscribe_at` (the nodes of a cluster). When they are
/// not all one address, PUBLISH replies count only the publishing node's
/// subscribers (Redis Cluster's rule), so the deliveries expected are
/// worked out from the scenario instead: every subscriber of a channel,
/// wherever it is.
pub async fn run_on(publish_at: &[String], subscribe_at: &[String], s: &Scenario) -> std::io::Result<Report> {
    let addr = &publish_at[0];
    let single = publish_at.len() == 1 && subscribe_at == publish_at;
    let _idle = idle_patterns(addr, s.idle_patterns).await?;
    let epoch = Instant::now();
    let published_per_channel = Arc::new(OnceLock::new());
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let mut subs = Vec::new();
    for i in 0..s.subscribers {
        let cmd = if s.pattern_subscribers {
            encode_command(&["PSUBSCRIBE", "bench:*"])
        } else {
            let verb = if s.shard { "SSUBSCRIBE" } else { "SUBSCRIBE" };
            encode_command(&[verb.to_string(), s.channel(i % s.channels)])
        };
        let at = subscribe_at[i % subscribe_at.len()].clone();
        let listens = if s.pattern_subscribers { Listens::Every } else { Listens::Channel(i % s.channels) };
        let task = subscriber(at, cmd, epoch, s.publishers, listens, ready_tx.clone(), published_per_channel.clone());
        subs.push(tokio::spawn(task));
    }
    drop(ready_tx);
    for _ in 0..s.subscribers {
        if ready.recv().await.is_none() {
            return Err(std::io::Error::other("a subscriber failed before subscribing"));
        }
    }
    let started = Instant::now();
    let deadline = started + s.duration;
    let pubs: Vec<_> = (0..s.publishers)
        .map(|p| tokio::spawn(publisher(publish_at[p % publish_at.len()].clone(), p, s.clone(), epoch, deadline)))
        .collect();
    let (mut published, mut expected) = (0, 0);
    let mut per_channel_total = vec![0u64; s.channels];
    for p in pubs {
        let (n, promised, per_channel) = p.await.expect("publisher task")?;
        published += n;
        expected += if single { promised } else { s.expected(&per_channel) };
        per_channel_total.iter_mut().zip(&per_channel).for_each(|(t, n)| *t += n);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = published_per_channel.set(per_channel_total);
    let mut report = Report { published, expected, ..Report::default() };
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut last_at = Duration::ZERO;
    for sub in subs {
        let r = sub.await.expect("subscriber task")?;
        report.delivered += r.delivered;
        report.duplicates += r.duplicates;
        report.reorders += r.reorders;
        last_at = last_at.max(r.last_at);
        latency.add(&r.latency).expect("same bounds");
    }
    // Deliveries over the time from the first publish to the last delivery.
    let delivering = last_at.saturating_sub(started - epoch).as_secs_f64().max(elapsed);
    report.published_per_sec = published as f64 / elapsed;
    report.deliveries_per_sec = report.delivered as f64 / delivering;
    report.p50_us = latency.value_at_quantile(0.5) as f64;
    report.p99_us = latency.value_at_quantile(0.99) as f64;
    report.p999_us = latency.value_at_quantile(0.999) as f64;
    report.max_us = latency.max() as f64;
    report.lost = expected as i64 - report.delivered as i64;
    Ok(report)
}

/// The scenarios of issue 5's table, as `cargo bench --bench pubsub` runs
/// them (3 s each); the CI smoke test runs them shortened.
pub fn scenarios() -> Vec<Scenario> {
    let s = |name: &str, f: &dyn Fn(&mut Scenario)| {
        let mut sc = Scenario { name: name.into(), duration: Duration::from_secs(3), ..Scenario::default() };
        f(&mut sc);
        sc
    };
    let idle = |label: &str, n: usize| {
        s(&format!("publish, {label} idle patterns"), &|x| {
            x.pipeline = 32;
            x.idle_patterns = n;
        })
    };
    vec![
        s("1 pub -> 1 sub, no pipelining", &|_| {}),
        s("10 subs / 10 ch / 2 pubs, pipeline 32", &|x| {
            x.subscribers = 10;
            x.channels = 10;
            x.publishers = 2;
            x.pipeline = 32;
        }),
        s("fan-out 1 ch -> 100 subs", &|x| {
            x.subscribers = 100;
            x.pipeline = 8;
        }),
        s("fan-out 1 ch -> 1000 subs", &|x| {
            x.subscribers = 1000;
            x.pipeline = 8;
        }),
        s("10 pattern subs matching all", &|x| {
            x.subscribers = 10;
            x.pattern_subscribers = true;
            x.channels = 10;
            x.pipeline = 32;
        }),
        s("publish, 0 idle patterns", &|x| x.pipeline = 32),
        idle("1k", 1_000),
        idle("10k", 10_000),
        idle("100k", 100_000),
        s("64 KiB payloads -> 100 subs", &|x| {
            x.subscribers = 100;
            x.payload = 64 * 1024;
            x.pipeline = 4;
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-channel RESP server standing in for one whose deliveries lag
    /// behind its replies (a cluster's bus backlog): PUBLISH is answered
    /// `:1` at once and its message reaches the subscribers `delay` later,
    /// in order, except every `skip`-th, which is never delivered. Returns
    /// its address.
    async fn lagging_server(delay: Duration, skip: Option<u64>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let subscribers = Arc::new(tokio::sync::Mutex::new(Vec::<TcpStream>::new()));
        let (queue, mut queued) = mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let out = subscribers.clone();
        tokio::spawn(async move {
            while let Some((at, frame)) = queued.recv().await {
                tokio::time::sleep_until(at).await;
                for s in out.lock().await.iter_mut() {
                    s.write_all(&frame).await.unwrap();
                }
            }
        });
        let published = Arc::new(std::sync::atomic::AtomicU64::new(0));
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (subscribers, queue, published) = (subscribers.clone(), queue.clone(), published.clone());
                tokio::spawn(async move {
                    let mut c = Conn { stream, buf: BytesMut::new() };
                    while let Ok(BytesFrame::Array(args)) = c.frame().await {
                        let arg = |i: usize| match args.get(i) {
                            Some(BytesFrame::BulkString(b)) => b.to_vec(),
                            _ => Vec::new(),
                        };
                        match &arg(0).to_ascii_uppercase()[..] {
                            b"SUBSCRIBE" => {
                                let ch = arg(1);
                                let mut confirm = format!("*3\r\n$9\r\nsubscribe\r\n${}\r\n", ch.len()).into_bytes();
                                confirm.extend_from_slice(&ch);
                                confirm.extend_from_slice(b"\r\n:1\r\n");
                                c.stream.write_all(&confirm).await.unwrap();
                                return subscribers.lock().await.push(c.stream);
                            }
                            b"PUBLISH" => {
                                c.stream.write_all(b":1\r\n").await.unwrap();
                                let n = published.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                                if skip.is_some_and(|k| n % k == 0) {
                                    continue;
                                }
                                let mut frame = Vec::new();
                                encode_command_into(&[&b"message"[..], &arg(1), &arg(2)], &mut frame);
                                queue.send((tokio::time::Instant::now() + delay, frame)).unwrap();
                            }
                            _ => c.stream.write_all(b"-ERR unknown command\r\n").await.unwrap(),
                        }
                    }
                });
            }
        });
        addr
    }

    fn scenario() -> Scenario {
        // Batches of 10, so every 10th publish is one per batch.
        Scenario { pipeline: 10, duration: Duration::from_millis(200), ..Scenario::default() }
    }

    /// A server that delivers everything, but a second after publishing
    /// ends, longer than a subscriber's read waits: nothing is lost.
    #[tokio::test]
    async fn a_backlog_that_keeps_coming_is_waited_for() {
        let addr = lagging_server(Duration::from_secs(1), None).await;
        let r = run(&addr, &scenario()).await.unwrap();
        assert!(r.published > 0);
        assert_eq!((r.delivered, r.lost, r.duplicates, r.reorders), (r.published, 0, 0, 0), "{r}");
    }

    /// A server that never delivers every 10th publish: exactly those are
    /// counted lost, once the grace period passes in silence.
    #[tokio::test]
    async fn what_never_arrives_is_counted_lost() {
        let addr = lagging_server(Duration::ZERO, Some(10)).await;
        let r = run(&addr, &scenario()).await.unwrap();
        assert!(r.published > 0, "{r}");
        assert_eq!(r.lost, (r.published / 10) as i64, "{r}");
        assert_eq!((r.duplicates, r.reorders), (0, 0), "{r}");
    }

    #[test]
    fn headers_are_read_from_the_payload_front() {
        assert_eq!(header(b"3:17:123456789:xxxx"), Some((3, 17, 123456789)));
        assert_eq!(header(b"0:0:1:"), Some((0, 0, 1)));
        for bad in [&b"3:x7:1:"[..], b"3::1:", b"3:1", b"99999999999999999999:1:1:"] {
            assert_eq!(header(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
