//! The cluster simulation's clients: subscribers opening and closing
//! windows (each with a probe published on another node), publishers, and
//! the audit once everyone has left. Each records only what it saw.

use std::collections::BTreeMap;
use std::time::Duration;

use super::link::Link;
use super::{connect, now, Publish, Publisher, Shared, Subscriber, Window, CHANNELS, PATTERN, PROBES};
use crate::text;

/// Opens and closes `windows` subscription windows, reconnecting when its
/// node goes away.
pub(super) async fn subscriber(
    i: usize,
    sp: Subscriber,
    cuts: Vec<(usize, Duration)>,
    record: Shared,
) -> turmoil::Result {
    let mut conn = 0;
    let mut c = Link::to(sp.node, &cuts).await;
    let mut names: Vec<(String, bool)> = sp.channels.iter().map(|c| (c.to_string(), false)).collect();
    if sp.pattern {
        names.push((PATTERN.to_string(), true));
    }
    let mut probe = Link::to(sp.prober, &cuts).await;
    let (mut w, mut probes) = (0, 0);
    while w < sp.windows {
        match window(i, conn, (&mut probes, &mut probe), &sp, &names, &mut c, &record).await {
            Ok(()) => {
                w += 1;
                tokio::time::sleep(sp.gap).await;
            }
            Err(_) => {
                // Every window open on the connection ends here, broken.
                for win in record.borrow_mut().windows.iter_mut() {
                    if win.subscriber == i && win.conn == conn && win.unsubscribe_sent.is_none() {
                        win.broken = true;
                    }
                }
                conn += 1;
                c = Link::to(sp.node, &cuts).await;
                probe = Link::to(sp.prober, &cuts).await;
            }
        }
    }
    Ok(())
}

/// One window: subscribe to every name, read for `open`, unsubscribe,
/// read until every unsubscribe is confirmed.
async fn window(
    i: usize,
    conn: usize,
    (probes, probe): (&mut usize, &mut Link),
    sp: &Subscriber,
    names: &[(String, bool)],
    c: &mut Link,
    record: &Shared,
) -> std::io::Result<()> {
    let channels: Vec<&str> = names.iter().filter(|(_, p)| !p).map(|(n, _)| n.as_str()).collect();
    let mut args = vec!["SUBSCRIBE"];
    args.extend(&channels);
    c.send(&args).await?;
    if sp.pattern {
        c.send(&["PSUBSCRIBE", PATTERN]).await?;
    }
    // Windows open as their confirmations arrive; index in `record.windows`.
    let mut open: BTreeMap<(bool, String), usize> = BTreeMap::new();
    while open.len() < names.len() {
        let words = c.frame().await?;
        read(i, conn, words, &mut open, record);
    }
    // The probe: published on another node the moment the window opens.
    let channel = sp.channels[0];
    let index = record.borrow().publishes.len();
    // Numbered by the probes sent, so a window opened again after a broken
    // connection probes with a new number.
    let seq = *probes;
    *probes += 1;
    let publish = Publish { publisher: PROBES + i, seq, channel, sent: now(), answered: None };
    record.borrow_mut().publishes.push(publish);
    probe.cmd(&["PUBLISH", channel, &format!("p{}-{seq}", PROBES + i)]).await?;
    record.borrow_mut().publishes[index].answered = Some(now());
    let until = now() + sp.open;
    while now() < until {
        match tokio::time::timeout(until - now(), c.frame()).await {
            Ok(words) => read(i, conn, words?, &mut open, record),
            Err(_) => break,
        }
    }
    let mut args = vec!["UNSUBSCRIBE"];
    args.extend(&channels);
    let sent = now();
    for &index in open.values() {
        record.borrow_mut().windows[index].unsubscribe_sent = Some(sent);
    }
    c.send(&args).await?;
    if sp.pattern {
        c.send(&["PUNSUBSCRIBE", PATTERN]).await?;
    }
    while !open.is_empty() {
        let words = c.frame().await?;
        read(i, conn, words, &mut open, record);
    }
    Ok(())
}

/// Takes one frame: a confirmation opens or closes a window, a message
/// lands in its window (or is a stray).
fn read(i: usize, conn: usize, words: Vec<String>, open: &mut BTreeMap<(bool, String), usize>, record: &Shared) {
    let mut r = record.borrow_mut();
    r.trace.push(format!("{:>9}us sub{i}/{conn}: {}", now().as_micros(), text(&words)));
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        [kind @ ("subscribe" | "psubscribe"), name, _] => {
            let pattern = *kind == "psubscribe";
            let window = Window {
                subscriber: i,
                conn,
                name: name.to_string(),
                pattern,
                confirmed: now(),
                unsubscribe_sent: None,
                broken: false,
                got: Vec::new(),
            };
            r.windows.push(window);
            let index = r.windows.len() - 1;
            open.insert((pattern, name.to_string()), index);
        }
        [kind @ ("unsubscribe" | "punsubscribe"), name, _] => {
            open.remove(&(*kind == "punsubscribe", name.to_string()));
        }
        ["message", name, payload] | ["pmessage", name, _, payload] => {
            let pattern = w[0] == "pmessage";
            let (p, seq) = parse(payload);
            match open.get(&(pattern, name.to_string())) {
                Some(&index) => {
                    r.windows[index].got.push((p, seq));
                    r.deliveries.push((i, conn, pattern, name.to_string(), p, seq));
                }
                None => r.strays.push((i, conn, text(&words))),
            }
        }
        _ => r.strays.push((i, conn, text(&words))),
    }
}

fn parse(payload: &str) -> (usize, usize) {
    let (p, seq) = payload.trim_start_matches('p').split_once('-').unwrap_or(("0", "0"));
    (p.parse().unwrap_or(usize::MAX), seq.parse().unwrap_or(usize::MAX))
}

/// Publishes `messages`, `depth` at a time, over the channels in turn
/// (seeded), reconnecting when its node goes away.
pub(super) async fn publisher(
    p: usize,
    pp: Publisher,
    cuts: Vec<(usize, Duration)>,
    record: Shared,
) -> turmoil::Result {
    let mut rng = fastrand::Rng::with_seed(p as u64);
    let mut c = Link::to(pp.node, &cuts).await;
    let mut seq = 0;
    while seq < pp.messages {
        let batch: Vec<(usize, &'static str)> =
            (seq..(seq + pp.depth).min(pp.messages)).map(|s| (s, CHANNELS[rng.usize(..CHANNELS.len())])).collect();
        let first = record.borrow().publishes.len();
        let mut out = Vec::new();
        for &(s, channel) in &batch {
            out.extend(crate::encode(&["PUBLISH", channel, &format!("p{p}-{s}")]));
            record.borrow_mut().publishes.push(Publish { publisher: p, seq: s, channel, sent: now(), answered: None });
        }
        seq += batch.len();
        let answered = async {
            c.send_raw(&out).await?;
            for k in 0..batch.len() {
                c.frame().await?;
                record.borrow_mut().publishes[first + k].answered = Some(now());
            }
            std::io::Result::Ok(())
        };
        if answered.await.is_err() {
            c = Link::to(pp.node, &cuts).await;
        }
        tokio::time::sleep(pp.every).await;
    }
    Ok(())
}

/// Once everyone has left: waits for every node to have all its links up
/// and no interest, announced or held; records what is left if that never
/// comes within 10 simulated seconds.
pub(super) async fn audit(nodes: usize, record: Shared) -> turmoil::Result {
    let deadline = now() + Duration::from_secs(10);
    let mut conns = Vec::new();
    for node in 0..nodes {
        conns.push(connect(node).await);
    }
    loop {
        let mut left = Vec::new();
        for (node, c) in conns.iter_mut().enumerate() {
            let info = c.cmd(&["CLUSTER", "INFO"]).await?.join("");
            let field = |name: &str| {
                info.split("\r\n").find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or("?").to_string()
            };
            let (announced, held, up) =
                (field("cluster_interest_announced"), field("cluster_interest_from_peers"), field("cluster_links_up"));
            if announced != "0" || held != "0" || up != (nodes - 1).to_string() {
                left.push((node, announced, held));
            }
        }
        if left.is_empty() {
            record.borrow_mut().interest_left = Some(Vec::new());
            return Ok(());
        }
        if now() > deadline {
            record.borrow_mut().interest_left = Some(left);
            return Ok(());
        }
        // A subscriber whose link was cut left a half-open connection
        // that nothing closes (turmoil has no TCP keepalive): to its node
        // it is a subscriber that never reads, which enough output drops
        // (OUTPUT_HARD), as it would any slow subscriber.
        let probe = "probe".repeat(1600);
        for c in conns.iter_mut() {
            for channel in CHANNELS {
                c.cmd(&["PUBLISH", channel, &probe]).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
