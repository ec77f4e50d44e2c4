//! Per-publisher order across channels and patterns on the multi-arbiter
//! production server (the simulator covers the single-host case).

mod support;

use support::{herald, Conn};

/// The last bulk string of a frame (the payload).
fn payload(frame: &[u8]) -> String {
    let text = String::from_utf8_lossy(frame);
    text.trim_end_matches("\r\n").rsplit("\r\n").next().unwrap().to_string()
}

#[test]
fn one_publisher_many_channels_order_kept_and_message_before_pmessage() {
    let h = herald();
    let channels: Vec<String> = (0..16).map(|i| format!("ch:{i}")).collect();
    let mut sub = Conn::open(h.port);
    for c in &channels {
        sub.cmd(&["SUBSCRIBE", c]);
    }
    sub.cmd(&["PSUBSCRIBE", "ch:*"]);
    let mut publisher = Conn::open(h.port);
    let total = 2000;
    // Pipelined: all publishes in one write, replies read afterwards.
    let mut raw = Vec::new();
    for i in 0..total {
        let c = channels[i % channels.len()].as_bytes();
        raw.extend(support::encode_cmd(&[b"PUBLISH", c, format!("{i}").as_bytes()]));
    }
    publisher.send(&raw);
    for _ in 0..total {
        assert_eq!(publisher.frame().as_ref(), b":2\r\n", "each publish reaches the channel and the pattern");
    }
    for i in 0..total {
        let m = sub.frame();
        assert!(m.starts_with(b"*3\r\n$7\r\nmessage"), "message {i} first: {m:?}");
        assert_eq!(payload(&m), i.to_string(), "message order");
        let p = sub.frame();
        assert!(p.starts_with(b"*4\r\n$8\r\npmessage"), "then its pmessage {i}: {p:?}");
        assert_eq!(payload(&p), i.to_string(), "pmessage order");
    }
}

#[test]
fn two_publishers_each_keep_their_order() {
    let h = herald();
    let mut sub = Conn::open(h.port);
    sub.cmd(&["PSUBSCRIBE", "t:*"]);
    let per = 1000;
    let workers: Vec<_> = (0..2)
        .map(|p| {
            let port = h.port;
            std::thread::spawn(move || {
                let mut c = Conn::open(port);
                for i in 0..per {
                    c.cmd(&["PUBLISH", &format!("t:{}", i % 7), &format!("{p}-{i}")]);
                }
            })
        })
        .collect();
    let mut next = [0usize; 2];
    for _ in 0..2 * per {
        let body = payload(&sub.frame());
        let (p, i) = body.split_once('-').unwrap();
        let p: usize = p.parse().unwrap();
        assert_eq!(i.parse::<usize>().unwrap(), next[p], "publisher {p} out of order");
        next[p] += 1;
    }
    for w in workers {
        w.join().unwrap();
    }
}

/// Pipelined publishes with no pattern subscription anywhere go out in
/// runs (one message per stretch of the same directory); the order across
/// channels must hold all the same, and so must the replies.
#[test]
fn pipelined_runs_across_channels_keep_order() {
    let h = herald();
    let channels: Vec<String> = (0..16).map(|i| format!("run:{i}")).collect();
    let mut sub = Conn::open(h.port);
    for c in &channels {
        sub.cmd(&["SUBSCRIBE", c]);
    }
    let mut other = Conn::open(h.port);
    other.cmd(&["SUBSCRIBE", "run:3"]);
    let mut publisher = Conn::open(h.port);
    let total = 5000;
    let mut raw = Vec::new();
    for i in 0..total {
        let c = channels[(i * 7) % channels.len()].as_bytes();
        raw.extend(support::encode_cmd(&[b"PUBLISH", c, format!("{i}").as_bytes()]));
        if i % 100 == 0 {
            raw.extend(support::encode_cmd(&[b"PUBLISH", b"nobody", b"x"]));
        }
    }
    publisher.send(&raw);
    for i in 0..total {
        let want: &[u8] = if (i * 7) % 16 == 3 { b":2\r\n" } else { b":1\r\n" };
        assert_eq!(publisher.frame().as_ref(), want, "reply {i}");
        if i % 100 == 0 {
            assert_eq!(publisher.frame().as_ref(), b":0\r\n", "reply after {i} (nobody)");
        }
    }
    for i in 0..total {
        assert_eq!(payload(&sub.frame()), i.to_string(), "message order");
    }
    let mut last = None;
    for _ in 0..(0..total).filter(|i| (i * 7) % 16 == 3).count() {
        let n: usize = payload(&other.frame()).parse().unwrap();
        assert!(last.is_none_or(|l| l < n));
        last = Some(n);
    }
}

/// Pipelined publishes to one channel travel as one fan-out; when a pattern
/// matches them, each message's pmessage still comes before the next
/// message, and a subscriber of only the channel or only an idle pattern
/// is unaffected.
#[test]
fn pipelined_runs_to_one_channel_interleave_message_and_pmessage() {
    let h = herald();
    let mut both = Conn::open(h.port);
    both.cmd(&["SUBSCRIBE", "feed"]);
    both.cmd(&["PSUBSCRIBE", "fe*"]);
    let mut plain = Conn::open(h.port);
    plain.cmd(&["SUBSCRIBE", "feed"]);
    let mut idle = Conn::open(h.port);
    idle.cmd(&["PSUBSCRIBE", "other:*"]);
    let mut publisher = Conn::open(h.port);
    let total = 500;
    let mut raw = Vec::new();
    for i in 0..total {
        raw.extend(support::encode_cmd(&[b"PUBLISH", b"feed", format!("{i}").as_bytes()]));
    }
    publisher.send(&raw);
    for _ in 0..total {
        assert_eq!(publisher.frame().as_ref(), b":3\r\n");
    }
    for i in 0..total {
        let m = both.frame();
        assert!(m.starts_with(b"*3\r\n$7\r\nmessage") && payload(&m) == i.to_string(), "message {i}: {m:?}");
        let p = both.frame();
        assert!(p.starts_with(b"*4\r\n$8\r\npmessage") && payload(&p) == i.to_string(), "pmessage {i}: {p:?}");
        assert_eq!(payload(&plain.frame()), i.to_string());
    }
    assert_eq!(idle.cmd(&["PING"]).as_ref(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", "nothing for the idle pattern");
}

/// Causal order across publishers, as Redis gives it: when A's PUBLISH has
/// been answered before B publishes, every subscriber gets A's message
/// first. With two arbiters, A's session is on the other arbiter than the
/// subscriber and B's on the same one (sessions are placed by id, round
/// robin), so B's deliveries would overtake A's if a same-arbiter route
/// skipped the postman A's bundle waits in. Found by `prop_model`.
#[test]
fn a_publish_answered_before_another_is_delivered_first() {
    let h = herald();
    let mut sub = Conn::open(h.port); // id 1: arbiter 1
    let mut a = Conn::open(h.port); // id 2: arbiter 0
    let mut b = Conn::open(h.port); // id 3: arbiter 1
    sub.cmd(&["PSUBSCRIBE", "c*"]);
    // Keep arbiter 1 busy with local work (a pipelined publisher and its
    // subscribers there), so a bundle from arbiter 0 waits in its queue.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut noise = Vec::new();
    for _ in 0..4 {
        let _skip = Conn::open(h.port); // an even id: arbiter 0
        let mut listener = Conn::open(h.port); // an odd id: arbiter 1
        listener.cmd(&["SUBSCRIBE", "noise"]);
        let stop = stop.clone();
        noise.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                listener.frame();
            }
        }));
    }
    let _skip = Conn::open(h.port);
    let mut loud = Conn::open(h.port); // odd: arbiter 1
    let stop_loud = stop.clone();
    noise.push(std::thread::spawn(move || {
        let mut batch = Vec::new();
        for _ in 0..64 {
            batch.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nnoise\r\n$1\r\nx\r\n");
        }
        while !stop_loud.load(std::sync::atomic::Ordering::Relaxed) {
            loud.send(&batch);
            for _ in 0..64 {
                loud.frame();
            }
        }
    }));
    for i in 0..2000 {
        assert_eq!(a.cmd(&["PUBLISH", "ca", &format!("a{i}")]).as_ref(), b":1\r\n");
        assert_eq!(b.cmd(&["PUBLISH", "cb", &format!("b{i}")]).as_ref(), b":1\r\n");
        let first = payload(&sub.frame());
        let second = payload(&sub.frame());
        assert_eq!(
            (first.as_str(), second.as_str()),
            (format!("a{i}").as_str(), format!("b{i}").as_str()),
            "round {i}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(h);
}

/// A client that sends UNSUBSCRIBE and closes at once leaves while the
/// UNSUBSCRIBE waits for its postman (several arbiters): its leaving is
/// told to the directory once, not again when the session stops. Told
/// twice, the channel counted one subscriber fewer than it had and the
/// other subscriber stopped receiving (found by redis-py's `close()`;
/// patterns, counted by the sessions, went wrong the same way).
#[test]
fn a_client_closing_while_its_unsubscribe_waits_leaves_the_others_subscribed() {
    let h = herald();
    for round in 0..20 {
        let (channel, pattern) = (format!("closing:{round}"), format!("closing:{round}*"));
        let mut stays = Conn::open(h.port);
        stays.cmd(&["SUBSCRIBE", &channel]);
        stays.cmd(&["PSUBSCRIBE", &pattern]);
        let mut leaves = Conn::open(h.port);
        leaves.cmd(&["SUBSCRIBE", &channel]);
        leaves.cmd(&["PSUBSCRIBE", &pattern]);
        let mut both = support::encode_cmd(&[b"UNSUBSCRIBE"]);
        both.extend(support::encode_cmd(&[b"PUNSUBSCRIBE"]));
        leaves.send(&both);
        drop(leaves);
        let mut publisher = Conn::open(h.port);
        // The count settles once the closed session is gone; until then
        // it may still count the leaver.
        let deadline = std::time::Instant::now() + support::REPLY_TIMEOUT;
        loop {
            let count = publisher.cmd(&["PUBLISH", &channel, "m"]);
            if count.as_ref() == b":2\r\n" {
                break;
            }
            assert!(
                matches!(count.as_ref(), b":3\r\n" | b":4\r\n"),
                "round {round}: PUBLISH counted {} with one subscriber left on the channel and its pattern",
                String::from_utf8_lossy(&count)
            );
            assert!(std::time::Instant::now() < deadline, "round {round}: the leaver was never gone");
        }
    }
}

/// UNSUBSCRIBE naming a channel twice leaves it once: the confirmations
/// count down as Redis' do, and another subscriber of the channel keeps
/// it (several arbiters, where the UNSUBSCRIBE waits for its postman).
#[test]
fn unsubscribing_a_channel_named_twice_leaves_it_once() {
    let h = herald();
    let mut stays = Conn::open(h.port);
    stays.cmd(&["SUBSCRIBE", "twice"]);
    let mut leaves = Conn::open(h.port);
    leaves.cmd(&["SUBSCRIBE", "twice"]);
    leaves.cmd(&["SUBSCRIBE", "other"]);
    assert_eq!(
        leaves.cmd(&["UNSUBSCRIBE", "twice", "twice"]).as_ref(),
        b"*3\r\n$11\r\nunsubscribe\r\n$5\r\ntwice\r\n:1\r\n"
    );
    assert_eq!(leaves.frame().as_ref(), b"*3\r\n$11\r\nunsubscribe\r\n$5\r\ntwice\r\n:1\r\n");
    let mut publisher = Conn::open(h.port);
    assert_eq!(publisher.cmd(&["PUBLISH", "twice", "m"]).as_ref(), b":1\r\n", "the stayer keeps the channel");
}
