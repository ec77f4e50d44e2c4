//! §1.7, §1.8, §3 and §7.1–7.3: limits, floods and garbage. Settings are
//! changed for the check only (`Setting` puts them back).

use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use herald_client::Value;

use crate::conn::Conn;
use crate::wire::{expect_bytes, refused};
use crate::{config_get, ensure, eventually, info_field, text, Outcome, Setting, Target, Verdict};

pub(crate) fn idle_timeout(t: &Target) -> Outcome {
    let _timeout = Setting::set(t, "timeout", "1")?;
    let c = t.channel("idle");
    let mut subscribed = Conn::open(t)?;
    subscribed.call(&["SUBSCRIBE", &c])?;
    let mut idle = Conn::open(t)?;
    idle.call(&["PING"])?;
    let said = idle.closes().map_err(|e| format!("an idle client with timeout 1: {e}"))?;
    ensure!(said.is_empty(), "an idle client was sent {} before its close", said.escape_ascii());
    // Past the timeout, the subscriber is still there.
    let pong = subscribed.call(&["PING"])?;
    ensure!(pong.raw == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", "the idle subscriber's PING got {}", pong.text());
    Ok(())
}

pub(crate) fn maxclients(t: &Target) -> Outcome {
    let mut setting = Setting::keep(t, "maxclients")?;
    let connected: u64 = info_field(&mut setting.conn, "clients", "connected_clients")?
        .parse()
        .map_err(|e| format!("connected_clients: {e}"))?;
    setting.to(&(connected + 1).to_string())?;
    let mut last = Conn::open(t)?;
    let pong = last.call(&["PING"])?;
    ensure!(pong.raw == b"+PONG\r\n", "client {} of maxclients {} got {}", connected + 1, connected + 1, pong.text());
    let mut extra = Conn::unauthenticated(t)?;
    let said = extra.closes()?;
    ensure!(
        said == b"-ERR max number of clients reached\r\n",
        "a client past maxclients got {} (and a close)",
        said.escape_ascii()
    );
    let pong = last.call(&["PING"])?;
    ensure!(pong.raw == b"+PONG\r\n", "after one was refused, a connected client got {}", pong.text());
    Ok(())
}

/// What a flood at a never-reading subscriber showed.
struct Flood {
    /// Whether the non-reader was disconnected (gone from CLIENT LIST).
    dropped: bool,
    /// Messages the reading subscriber received, in order, of `sent`.
    read_in_order: usize,
    sent: usize,
    /// Every PUBLISH answered with a count of at least one reader.
    publishes_answered: bool,
    /// A bystander's PING answered after every batch.
    bystander_served: bool,
    /// Growth of the server's RSS (INFO used_memory_rss), at its peak.
    rss_growth: i64,
}

/// Sets the pubsub output limit to `limit` (Redis' `hard soft seconds`),
/// then publishes `mib` MiB in 16 KiB messages at a subscriber that never
/// reads (small receive window) and one that does.
fn flood(t: &Target, limit: &str, mib: usize) -> Result<Flood, Verdict> {
    let mut setting = Setting::keep(t, "client-output-buffer-limit")?;
    setting.to(&format!("pubsub {limit}"))?;
    let c = t.channel("flood");
    let name = format!("{}-slow", t.nonce);
    let mut slow = Conn::small_window(t)?;
    slow.expect_ok(&["CLIENT", "SETNAME", &name])?;
    slow.call(&["SUBSCRIBE", &c])?;
    let mut reader = Conn::open(t)?;
    reader.call(&["SUBSCRIBE", &c])?;
    let payload = "x".repeat(16 * 1024);
    let sent = mib * 64;
    // The publisher lets the reader fall at most 512 KiB behind, so only
    // the non-reader can reach the limit, however the threads are scheduled.
    let progress = Arc::new((Mutex::new(0usize), Condvar::new()));
    let reading = {
        let progress = progress.clone();
        thread::spawn(move || -> Result<usize, String> {
            // On a failure the publisher is let go at once (it is judged
            // by what this returns).
            let give_up = || {
                *progress.0.lock().expect("progress") = usize::MAX;
                progress.1.notify_all();
            };
            let mut in_order = 0;
            while in_order < sent {
                let frame = reader.read().inspect_err(|_| give_up())?;
                let items = frame.value.items().unwrap_or_default();
                if items.len() != 3 || items[2].as_bytes().map(<[u8]>::len) != Some(16 * 1024) {
                    give_up();
                    return Err(format!("the reading subscriber got {}", frame.text()));
                }
                in_order += 1;
                *progress.0.lock().expect("progress") = in_order;
                progress.1.notify_all();
            }
            Ok(in_order)
        })
    };
    let mut publisher = Conn::open(t)?;
    let mut bystander = Conn::open(t)?;
    let rss = |c: &mut Conn| -> Result<i64, String> {
        info_field(c, "memory", "used_memory_rss")?.parse().map_err(|e| format!("used_memory_rss: {e}"))
    };
    let rss_before = rss(&mut bystander)?;
    let mut peak = rss_before;
    let (mut publishes_answered, mut bystander_served) = (true, true);
    for batch in 0..sent / 16 {
        for _ in 0..16 {
            publisher.send(&["PUBLISH", &c, &payload])?;
        }
        for _ in 0..16 {
            publishes_answered &= publisher.read()?.value.as_int().is_some_and(|n| n >= 1);
        }
        let behind = (batch + 1) * 16 - 32.min((batch + 1) * 16);
        let (read, _) = progress
            .1
            .wait_timeout_while(progress.0.lock().expect("progress"), crate::conn::REPLY_TIMEOUT, |read| *read < behind)
            .expect("progress");
        if *read < behind || *read == usize::MAX {
            break;
        }
        if batch % 8 == 0 {
            bystander_served &= bystander.call(&["PING"])?.raw == b"+PONG\r\n";
            peak = peak.max(rss(&mut bystander)?);
        }
    }
    let read_in_order = reading.join().map_err(|_| "the reader panicked".to_string())??;
    // Redis judges the soft limit when output is added: keep adding a
    // little until the non-reader is gone (or the timeout passes).
    let dropped = eventually(
        || {
            publisher.call(&["PUBLISH", &c, "tick"])?;
            let list = bystander.call(&["CLIENT", "LIST"])?;
            Ok((!text(&list.value).unwrap_or_default().contains(&format!("name={name} "))).then_some(()))
        },
        "the non-reading subscriber disconnected",
    )
    .is_ok();
    drop(slow);
    Ok(Flood { dropped, read_in_order, sent, publishes_answered, bystander_served, rss_growth: peak - rss_before })
}

pub(crate) fn slow_subscriber_dropped(t: &Target) -> Outcome {
    let hard = flood(t, "1048576 0 0", 16)?;
    ensure!(hard.dropped, "a subscriber owed 16 MiB past a 1 MiB hard limit was kept");
    let soft = flood(t, "0 262144 1", 4)?;
    ensure!(soft.dropped, "a subscriber over a 256 KiB soft limit for more than its 1 s was kept");
    Ok(())
}

pub(crate) fn others_not_slowed(t: &Target) -> Outcome {
    let f = flood(t, "1048576 0 0", 16)?;
    ensure!(f.read_in_order == f.sent, "the reading subscriber got {} of {} messages", f.read_in_order, f.sent);
    ensure!(f.publishes_answered, "a PUBLISH during the flood was not answered with its reader counted");
    ensure!(f.bystander_served, "a bystander's PING went unanswered during the flood");
    Ok(())
}

pub(crate) fn flood_is_bounded(t: &Target) -> Outcome {
    let f = flood(t, "1048576 0 0", 64)?;
    ensure!(f.dropped, "the non-reading subscriber was kept through a 64 MiB flood");
    let bound = (1 + 32) << 20;
    ensure!(f.rss_growth < bound, "RSS grew by {} MiB in a 64 MiB flood with a 1 MiB limit", f.rss_growth >> 20);
    ensure!(f.read_in_order == f.sent && f.bystander_served, "the reader or the bystander was not served");
    Ok(())
}

pub(crate) fn protocol_limits(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    let max_bulk: u64 =
        config_get(&mut c, "proto-max-bulk-len")?.parse().map_err(|e| format!("proto-max-bulk-len: {e}"))?;
    // Each header alone, without its body: refused as soon as it arrives.
    refused(t, "*2147483648", b"*2147483648\r\n", "-ERR Protocol error: invalid multibulk length")?;
    let too_long = format!("*1\r\n${}\r\n", max_bulk + 1);
    refused(t, "a bulk over proto-max-bulk-len", too_long.as_bytes(), "-ERR Protocol error: invalid bulk length")?;
    // One byte past 64 KiB and no more: the server has read everything
    // when it answers, so its close is not a reset that could take the
    // answer with it.
    const PAST: usize = 64 * 1024 + 1;
    refused(t, "an inline command past 64 KiB", &[b'a'; PAST], "-ERR Protocol error: too big inline request")?;
    let count = [b"*".as_slice(), &[b'1'; PAST - 1]].concat();
    refused(t, "a multibulk count past 64 KiB", &count, "-ERR Protocol error: too big mbulk count string")?;
    let bulk = [b"*1\r\n$".as_slice(), &[b'1'; PAST - 1]].concat();
    refused(t, "a bulk length past 64 KiB", &bulk, "-ERR Protocol error: too big bulk count string")?;

    // A command past client-query-buffer-limit: closed without a reply.
    let _limit = Setting::set(t, "client-query-buffer-limit", "1048576")?;
    let mut big = Conn::open(t)?;
    let arg = vec![b'x'; 2 << 20];
    let _ = big.write(&herald_client::encode_command(&[b"ECHO".as_slice(), &arg]));
    let said = big.closes().map_err(|e| format!("a 2 MiB command past a 1 MiB query buffer limit: {e}"))?;
    ensure!(said.is_empty(), "a command past the query buffer limit got {} before the close", said.escape_ascii());
    Ok(())
}

/// Seeded garbage: RESP-looking fragments and random bytes.
fn garbage(rng: &mut fastrand::Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"*",
        b"$",
        b"\r\n",
        b"\n",
        b"-1",
        b"0",
        b"3",
        b"99999999999",
        b"PING",
        b"SUBSCRIBE",
        b"PUBLISH",
        b" ",
        b"\"",
        b"'",
        b"\\x4",
        b"\x00",
        b"+",
        b":",
        b"HELLO",
        b"3",
    ];
    let mut out = Vec::new();
    for _ in 0..rng.usize(1..200) {
        if rng.bool() {
            out.extend_from_slice(PIECES[rng.usize(..PIECES.len())]);
        } else {
            out.push(rng.u8(..));
        }
    }
    out
}

pub(crate) fn garbage_is_refused_others_served(t: &Target) -> Outcome {
    let seed = t.seed;
    let mut rng = fastrand::Rng::with_seed(seed);
    let c = t.channel("bystander");
    let mut subscriber = Conn::open(t)?;
    subscriber.call(&["SUBSCRIBE", &c])?;
    let mut bystander = Conn::open(t)?;
    for round in 0..60 {
        let mut g = Conn::open(t)?;
        let sent = garbage(&mut rng);
        g.write(&sent)?;
        // Whatever comes back is well-formed RESP (or nothing, or a close).
        loop {
            match g.read_within(Duration::from_millis(50)) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) if e.starts_with("invalid RESP") => {
                    return Err(Verdict::Fail(format!(
                        "replay with --only 7.1 --seed {seed}; round {round}: {} answered with {e}",
                        sent.escape_ascii()
                    )))
                }
                Err(_) => break,
            }
        }
        g.reset();
        let count = bystander.call(&["PUBLISH", &c, &round.to_string()])?;
        ensure!(
            count.value == Value::Int(1),
            "replay with --only 7.1 --seed {seed}; round {round}: PUBLISH answered {}",
            count.text()
        );
        let frame = subscriber.read()?;
        ensure!(
            frame.value.items().and_then(|i| i.get(2)).and_then(Value::as_bytes) == Some(round.to_string().as_bytes()),
            "replay with --only 7.1 --seed {seed}; round {round}: the subscriber got {}",
            frame.text()
        );
    }
    bystander.send(&["PING"])?;
    expect_bytes(&mut bystander, "PING", b"+PONG\r\n")
}
