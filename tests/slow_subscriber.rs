//! Bounded memory with a subscriber that never reads: it is disconnected at
//! its output limit, while another subscriber gets every message in order
//! and the publisher is never held back.

mod support;

use std::time::{Duration, Instant};

use herald::{Config, OutputLimit};
use support::{herald_with, Conn, Server, REPLY_TIMEOUT};

/// Herald with the given pubsub output limit, and a client subscribed to
/// `feed` that will never read again.
fn herald_and_stuck_subscriber(hard: usize, soft: usize, soft_for: Duration) -> (Server, Conn) {
    let limit = OutputLimit { hard, soft, soft_for };
    let h = herald_with(Config { pubsub_output: limit, ..Config::default() });
    let mut stuck = Conn::open(h.port);
    assert!(stuck.cmd(&["SUBSCRIBE", "feed"]).starts_with(b"*3\r\n$9\r\nsubscribe"));
    (h, stuck)
}

#[test]
fn never_reading_subscriber_is_dropped_others_get_everything() {
    // A 4 MiB hard limit: the reader, a thread of its own, may fall that far
    // behind when the cores are busy (at 1 MiB it was dropped once, in a CI
    // run that shared 2 cores with a mutation run) without being dropped.
    let (h, mut stuck) = herald_and_stuck_subscriber(4 << 20, 256 * 1024, Duration::from_secs(60));
    let mut reader = Conn::open(h.port);
    reader.cmd(&["SUBSCRIBE", "feed"]);

    // 4000 × 8 KiB = 32 MiB: far past the 4 MiB limit plus what the kernel's
    // socket buffers hold for the stuck client.
    let payload = "x".repeat(8 * 1024);
    let total = 4000;
    let mut publisher = Conn::open(h.port);
    let reader_thread = std::thread::spawn(move || {
        for i in 0..total {
            let frame = reader.frame();
            let expected = format!("{i:05}");
            let at = frame.len() - 2 - 8 * 1024;
            assert_eq!(&frame[at - 5..at], expected.as_bytes(), "message {i} out of order or missing");
        }
        reader
    });
    let mut counts = Vec::new();
    for i in 0..total {
        let body = format!("{i:05}{payload}");
        let reply = publisher.cmd(&["PUBLISH", "feed", &body]);
        counts.push(String::from_utf8_lossy(&reply).trim().to_string());
    }
    let mut reader = reader_thread.join().expect("reader got every message in order");

    // The stuck client was cut off: it holds far less than was published.
    let received = stuck.read_to_eof();
    assert!(received.len() < total * 8 * 1024 / 2, "stuck subscriber got {} bytes", received.len());
    // Counts went from 2 to 1 once it was dropped, never back.
    assert_eq!(counts[0], ":2");
    assert_eq!(counts.last().unwrap(), ":1");
    let first_one = counts.iter().position(|c| c == ":1").unwrap();
    assert!(counts[first_one..].iter().all(|c| c == ":1"));
    assert_eq!(reader.cmd(&["PING"]).as_ref(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    let info = String::from_utf8_lossy(&publisher.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("herald_dropped_slow_subscribers:1\r\n"), "{info}");
}

#[test]
fn subscriber_over_the_soft_limit_for_its_period_is_dropped() {
    // No hard limit: only the soft one (256 KiB for 1 s) can close it.
    let (h, mut stuck) = herald_and_stuck_subscriber(0, 256 * 1024, Duration::from_secs(1));
    let mut publisher = Conn::open(h.port);
    let payload = "y".repeat(512);
    // Publish until the count drops to 0: the stuck client stays over the
    // soft limit and must be dropped once its period has passed. Bounded so
    // a broken limit fails instead of filling memory.
    let mut published = 0usize;
    let dropped = (0..500_000).any(|_| {
        published += 1;
        publisher.cmd(&["PUBLISH", "feed", &payload]).as_ref() == b":0\r\n"
    });
    assert!(dropped, "still subscribed after {published} messages");
    let received = stuck.read_to_eof();
    assert!(received.len() < published * 512, "it got everything: it was not dropped");
}

/// A subscriber left over its soft limit with nothing more published to
/// it is dropped when the soft period ends (the session checks again
/// then), and not before. The delivery that crosses the limit is the last
/// one, so the check must be set up at the crossing, not by deliveries
/// after it.
#[test]
fn a_subscriber_left_over_its_soft_limit_is_dropped_when_the_period_ends() {
    let soft = 256 * 1024;
    let limit = OutputLimit { hard: 0, soft, soft_for: Duration::from_secs(1) };
    let h = herald_with(Config { pubsub_output: limit, ..Config::default() });
    let mut stuck = Conn::open(h.port);
    let id = stuck.client_id();
    assert!(stuck.cmd(&["SUBSCRIBE", "feed"]).starts_with(b"*3\r\n$9\r\nsubscribe"));
    let mut publisher = Conn::open(h.port);
    // Fill the kernel's buffers until Herald itself holds a quarter of the
    // soft limit: from then on, what is published stays queued in Herald.
    let small = "s".repeat(8 * 1024);
    let mut queued = 0;
    for _ in 0..4096 {
        assert_eq!(publisher.cmd(&["PUBLISH", "feed", &small]).as_ref(), b":1\r\n");
        queued = publisher.omem_of(&id).expect("the subscriber is there");
        if queued >= soft as u64 / 4 {
            break;
        }
    }
    assert!(
        (soft as u64 / 4..soft as u64).contains(&queued),
        "{queued} bytes queued: not between a quarter and all of the soft limit"
    );
    // One delivery takes it over the soft limit; nothing is published after.
    let started = Instant::now();
    let big = "b".repeat(soft);
    assert_eq!(publisher.cmd(&["PUBLISH", "feed", &big]).as_ref(), b":1\r\n");
    while publisher.omem_of(&id).is_some() {
        assert!(
            started.elapsed() < REPLY_TIMEOUT,
            "still connected {:?} after its last delivery took it over its soft limit",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "dropped after {:?}, within its soft period",
        started.elapsed()
    );
    let info = String::from_utf8_lossy(&publisher.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("herald_dropped_slow_subscribers:1\r\n"), "{info}");
    let received = stuck.read_to_eof();
    assert!(!received.ends_with(big.as_bytes()), "it got the last message: it was not dropped");
}

/// A limit set by CONFIG SET holds for subscribers already connected: with
/// no limit at start, a stuck subscriber is kept however much it owes;
/// once the hard limit is set, it is dropped.
#[test]
fn a_limit_set_at_runtime_applies_to_connected_subscribers() {
    let (h, mut stuck) = herald_and_stuck_subscriber(0, 0, Duration::ZERO);
    let mut publisher = Conn::open(h.port);
    let payload = "z".repeat(8 * 1024);
    // 8 MiB owed (more than the kernel's buffers hold): still subscribed.
    for _ in 0..1024 {
        assert_eq!(publisher.cmd(&["PUBLISH", "feed", &payload]).as_ref(), b":1\r\n", "dropped with no limit set");
    }
    let set = publisher.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 0 0"]);
    assert_eq!(set.as_ref(), b"+OK\r\n");
    // The next delivery finds it over its new limit.
    let mut published = 0usize;
    let dropped = (0..1024).any(|_| {
        published += 1;
        publisher.cmd(&["PUBLISH", "feed", &payload]).as_ref() == b":0\r\n"
    });
    assert!(dropped, "still subscribed {published} messages after CONFIG SET");
    assert!(published <= 2, "the new limit took {published} publishes to apply");
    let received = stuck.read_to_eof();
    assert!(received.len() < 1024 * 8 * 1024, "it got everything: it was not dropped");
}
