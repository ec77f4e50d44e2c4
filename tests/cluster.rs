//! Cluster mode on real TCP: three `herald` processes on loopback with a
//! static topology (`--cluster-nodes`). What each node tells cluster
//! clients, shard channels served by their slot's node alone, and classic
//! pub/sub across nodes: forwarded by interest, once, in order, with the
//! subscription boundary of SPEC §9. `cluster_differential.rs` compares
//! the replies with a real Redis cluster.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use support::cluster::{eventually, field, node, Cluster};
use support::{encode_cmd, Conn};

fn message(channel: &str, payload: &str) -> Bytes {
    Bytes::from(encode_cmd(&[b"message", channel.as_bytes(), payload.as_bytes()]))
}

fn pmessage(pattern: &str, channel: &str, payload: &str) -> Bytes {
    Bytes::from(encode_cmd(&[b"pmessage", pattern.as_bytes(), channel.as_bytes(), payload.as_bytes()]))
}

fn int(n: i64) -> Bytes {
    Bytes::from(format!(":{n}\r\n"))
}

#[test]
fn every_node_describes_the_same_cluster_and_itself() {
    let cluster = Cluster::start(3);
    let slots: Vec<Bytes> = (0..3).map(|i| cluster.conn(i).cmd(&["CLUSTER", "SLOTS"])).collect();
    assert!(slots.iter().all(|s| *s == slots[0]), "CLUSTER SLOTS differs between nodes");
    let text = String::from_utf8_lossy(&slots[0]).into_owned();
    for (i, (first, last)) in [(0, 5460), (5461, 10922), (10923, 16383)].into_iter().enumerate() {
        let range = format!(":{first}\r\n:{last}\r\n*4\r\n$9\r\n127.0.0.1\r\n:{}\r\n", cluster.port(i));
        assert!(text.contains(&range), "{range:?} not in {text:?}");
    }
    let ids: Vec<Bytes> = (0..3).map(|i| cluster.conn(i).cmd(&["CLUSTER", "MYID"])).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    for (i, id) in ids.iter().enumerate() {
        let mut c = cluster.conn(i);
        let nodes = String::from_utf8(c.cmd(&["CLUSTER", "NODES"]).to_vec()).unwrap();
        let mine = nodes.lines().find(|l| l.contains("myself")).expect("a myself line");
        let id = String::from_utf8_lossy(&id[5..45]).into_owned();
        assert!(mine.starts_with(&id), "{mine} is not node {i}");
        assert_eq!(nodes.lines().filter(|l| l.contains(" connected")).count(), 3, "{nodes}");
        assert_eq!(field(&mut c, "cluster_state"), "ok");
        assert_eq!(field(&mut c, "cluster_known_nodes"), "3");
        let info = String::from_utf8(c.cmd(&["INFO", "cluster"]).to_vec()).unwrap();
        assert!(info.contains("cluster_enabled:1"), "{info}");
        assert_eq!(c.cmd(&["READONLY"]), Bytes::from_static(b"+OK\r\n"));
        assert!(c.cmd(&["CLUSTER", "MEET", "127.0.0.1", "1"]).starts_with(b"-ERR Herald's cluster topology"));
    }
}

/// The node of `slot` in a 3-node cluster split as redis-cli splits it.
fn owner_of(slot: i64) -> usize {
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

#[test]
fn shard_channels_are_served_by_their_slot_node_alone() {
    let cluster = Cluster::start(3);
    // "foo" is in slot 12182: node 2's.
    let (owner, other) = (owner_of(12182), 0);
    let mut elsewhere = cluster.conn(other);
    let moved = format!("-MOVED 12182 127.0.0.1:{}\r\n", cluster.port(owner));
    assert_eq!(elsewhere.cmd(&["SPUBLISH", "foo", "x"]), Bytes::from(moved.clone()));
    assert_eq!(elsewhere.cmd(&["SSUBSCRIBE", "foo"]), Bytes::from(moved.clone()));
    assert_eq!(elsewhere.cmd(&["SUNSUBSCRIBE", "{foo}bar"]), Bytes::from(moved));
    assert_eq!(
        elsewhere.cmd(&["SSUBSCRIBE", "foo", "bar"]),
        Bytes::from_static(b"-CROSSSLOT Keys in request don't hash to the same slot\r\n")
    );
    // With no names there is no slot to check: served anywhere.
    assert_eq!(elsewhere.cmd(&["SUNSUBSCRIBE"]), Bytes::from_static(b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n"));

    let mut sub = cluster.conn(owner);
    sub.cmd(&["SSUBSCRIBE", "foo", "{foo}bar"]);
    sub.frame();
    let mut publisher = cluster.conn(owner);
    assert_eq!(publisher.cmd(&["SPUBLISH", "{foo}bar", "hi"]), int(1));
    let smessage = Bytes::from(encode_cmd(&[b"smessage", b"{foo}bar", b"hi"]));
    assert_eq!(sub.frame(), smessage);
    // Shard channels never cross: nothing was forwarded.
    assert_eq!(field(&mut publisher, "cluster_publishes_forwarded"), "0");
}

/// A subscriber on one node, publishers on another: 100 fresh channels,
/// each published to right after the subscription is confirmed, must
/// each reach the subscriber (SPEC §9.2). With `planted`, the same
/// check must fail.
fn boundary(cluster: &Cluster, timeout: Duration) {
    let (mut sub, mut publisher) = (cluster.conn(2), cluster.conn(0));
    sub.set_timeout(timeout);
    for round in 0..100 {
        let channel = format!("boundary:{round}");
        sub.cmd(&["SUBSCRIBE", &channel]);
        assert_eq!(publisher.cmd(&["PUBLISH", &channel, "m"]), int(0), "no subscriber on the publishing node");
        let got = sub.try_frame_within();
        assert_eq!(got, Some(message(&channel, "m")), "round {round}: the publish after the confirmation was lost");
    }
}

#[test]
fn a_publish_after_a_confirmation_on_another_node_reaches_the_subscriber() {
    let cluster = Cluster::start(3);
    boundary(&cluster, support::REPLY_TIMEOUT);
}

/// A publisher on node 0 alternating two channels; on node 1 a
/// subscriber to both and a pattern matching one, on node 2 a subscriber
/// to one: each gets every message once, in order, each message before
/// its pmessage, and node 0 sends each publish to each node once.
fn once_in_order(cluster: &Cluster) -> Result<(), String> {
    let (mut one, mut two, mut publisher) = (cluster.conn(1), cluster.conn(2), cluster.conn(0));
    one.cmd(&["SUBSCRIBE", "a", "b"]);
    one.frame();
    one.cmd(&["PSUBSCRIBE", "a*"]);
    two.cmd(&["SUBSCRIBE", "a"]);
    let forwarded_before: u64 = field(&mut publisher, "cluster_publishes_forwarded").parse().unwrap();
    let n = 500;
    let mut pipeline = Vec::new();
    for i in 0..n {
        let channel = if i % 2 == 0 { "a" } else { "b" };
        pipeline.extend(encode_cmd(&[b"PUBLISH", channel.as_bytes(), i.to_string().as_bytes()]));
    }
    publisher.send(&pipeline);
    for _ in 0..n {
        publisher.frame();
    }
    for i in 0..n {
        let payload = i.to_string();
        let channel = if i % 2 == 0 { "a" } else { "b" };
        let got = one.frame();
        if got != message(channel, &payload) {
            return Err(format!("node 1, message {i}: {}", String::from_utf8_lossy(&got)));
        }
        if channel == "a" {
            let got = one.frame();
            if got != pmessage("a*", "a", &payload) {
                return Err(format!("node 1, pmessage {i}: {}", String::from_utf8_lossy(&got)));
            }
            let got = two.frame();
            if got != message("a", &payload) {
                return Err(format!("node 2, message {i}: {}", String::from_utf8_lossy(&got)));
            }
        }
    }
    // Nothing more: a duplicate would be next.
    let end = "end";
    publisher.cmd(&["PUBLISH", "a", end]);
    let (next_one, next_two) = (one.frame(), two.frame());
    if next_one != message("a", end) || next_two != message("a", end) {
        return Err(format!(
            "after the last message: {} / {}",
            String::from_utf8_lossy(&next_one),
            String::from_utf8_lossy(&next_two)
        ));
    }
    // "a" goes to nodes 1 and 2, "b" to node 1: one copy per node. (The
    // Mesh counts just after it sends, so the figure may trail.)
    let want = ((n / 2) * 2 + n / 2 + 2) as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let forwarded = field(&mut publisher, "cluster_publishes_forwarded").parse::<u64>().unwrap() - forwarded_before;
        match forwarded.cmp(&want) {
            std::cmp::Ordering::Equal => return Ok(()),
            std::cmp::Ordering::Less if Instant::now() < deadline => std::thread::yield_now(),
            _ => return Err(format!("node 0 forwarded {forwarded} publishes, not {want}")),
        }
    }
}

#[test]
fn classic_publishes_reach_every_node_once_in_order() {
    let cluster = Cluster::start(3);
    once_in_order(&cluster).unwrap();
}

#[test]
fn only_nodes_that_want_a_channel_are_sent_its_publishes() {
    let cluster = Cluster::start(3);
    let mut publisher = cluster.conn(0);
    let forwarded = |c: &mut Conn| field(c, "cluster_publishes_forwarded").parse::<u64>().unwrap();
    for i in 0..50 {
        publisher.cmd(&["PUBLISH", &format!("nobody:{i}"), "x"]);
    }
    let mut sub = cluster.conn(1);
    sub.cmd(&["SUBSCRIBE", "wanted"]);
    publisher.cmd(&["PUBLISH", "wanted", "1"]);
    assert_eq!(sub.frame(), message("wanted", "1"));
    // The Mesh takes a publisher's publishes in order: once the last one
    // is counted, the 50 before it were passed over.
    eventually("the forward counted", || forwarded(&mut publisher) >= 1);
    assert_eq!(forwarded(&mut publisher), 1, "a publish nobody wants crossed to a node");
    // Once node 1's last subscriber leaves, node 0 stops sending.
    sub.cmd(&["UNSUBSCRIBE", "wanted"]);
    eventually("node 0 no longer forwards 'wanted'", || {
        let before = forwarded(&mut publisher);
        publisher.cmd(&["PUBLISH", "wanted", "2"]);
        forwarded(&mut publisher) == before
    });
    let mut other = cluster.conn(0);
    assert_eq!(field(&mut other, "cluster_publishes_dropped"), "0");
}

#[test]
fn a_node_restarted_rejoins_and_its_subscribers_are_reached_again() {
    let mut cluster = Cluster::start(3);
    let mut publisher = cluster.conn(0);
    // Kept open until node 2 dies: closed first, node 2 would withdraw
    // its interest before dying, and nothing would be owed to it.
    let mut sub = cluster.conn(2);
    sub.cmd(&["SUBSCRIBE", "news"]);
    publisher.cmd(&["PUBLISH", "news", "before"]);
    assert_eq!(sub.frame(), message("news", "before"));
    cluster.nodes[2].kill();
    drop(sub);
    cluster.wait_links(0, 1);
    // Node 2 was wanting "news" when it died: what node 0 cannot send is
    // counted, never queued without bound.
    publisher.cmd(&["PUBLISH", "news", "lost"]);
    let mut c = cluster.conn(0);
    eventually("the publish for the dead node counted as dropped", || {
        field(&mut c, "cluster_publishes_dropped") != "0"
    });
    cluster.nodes[2] = node(cluster.nodes[2].port, &cluster.list.clone(), &[]);
    for i in 0..3 {
        cluster.wait_links(i, 2);
    }
    let mut sub = cluster.conn(2);
    sub.cmd(&["SUBSCRIBE", "news"]);
    publisher.cmd(&["PUBLISH", "news", "after"]);
    assert_eq!(sub.frame(), message("news", "after"));
}

/// A peer that stops reading (SIGSTOP) holds up neither the publishers
/// nor the local subscribers of the node publishing: its link's queue
/// passes `cluster-link-sendbuf-limit`, the link is closed and counted,
/// what it could not take is counted dropped (CLUSTER INFO, INFO), and
/// once the peer runs again its link opens and its subscriber is reached.
#[test]
fn a_stalled_peer_is_cut_off_at_its_send_buffer_limit() {
    let cluster = Cluster::start_configured(3, &[], &["cluster-link-sendbuf-limit 262144"]);
    let (mut publisher, mut local, mut far) = (cluster.conn(0), cluster.conn(0), cluster.conn(2));
    local.cmd(&["SUBSCRIBE", "news"]);
    far.cmd(&["SUBSCRIBE", "news"]);
    let signal = |sig: &str| {
        let pid = cluster.nodes[2].pid().to_string();
        assert!(std::process::Command::new("kill").args([sig, &pid]).status().unwrap().success());
    };
    signal("-STOP");
    // 32 MB: more than loopback's socket buffers and the limit together.
    let payload = "x".repeat(64 * 1024);
    let mut c = cluster.conn(0);
    let limit_passed = |c: &mut Conn| field(c, "total_cluster_links_buffer_limit_exceeded") != "0";
    let mut published = 0;
    while published < 512 || !limit_passed(&mut c) {
        assert!(published < 4096, "256 MB published and the stalled peer's link never passed its limit");
        assert_eq!(publisher.cmd(&["PUBLISH", "news", &payload]), Bytes::from_static(b":1\r\n"));
        assert_eq!(local.frame(), message("news", &payload), "local delivery held up by a stalled peer");
        published += 1;
    }
    assert_ne!(field(&mut c, "cluster_publishes_dropped"), "0");
    let info = String::from_utf8(c.cmd(&["INFO", "stats"]).to_vec()).unwrap();
    let stat =
        |name: &str| info.split("\r\n").find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).unwrap().to_string();
    assert_ne!(stat("herald_cluster_links_buffer_limit_exceeded"), "0", "{info}");
    assert_ne!(stat("herald_cluster_publishes_dropped"), "0", "{info}");
    signal("-CONT");
    // What reached node 2 before the cut arrives first; then, once the
    // link is open again, a new publish does.
    cluster.wait_links(0, 2);
    far.set_timeout(Duration::from_millis(200));
    let mut reached = false;
    eventually("node 2's subscriber reached again", || {
        publisher.cmd(&["PUBLISH", "news", "again"]);
        local.frame();
        while let Some(frame) = far.try_frame_within() {
            reached |= frame == message("news", "again");
        }
        reached
    });
}

/// The checks above can fail: a node that confirms SUBSCRIBE before its
/// peers have the interest loses the publish right after it, and a node
/// that passes on what it was forwarded duplicates it.
#[cfg(feature = "planted-bugs")]
mod planted {
    use super::*;

    #[test]
    fn a_confirmation_ahead_of_the_peers_is_caught() {
        let cluster = Cluster::start_with(3, &[("HERALD_PLANTED_BUG", "ConfirmBeforePeers")]);
        let caught =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| boundary(&cluster, Duration::from_secs(2))));
        assert!(caught.is_err(), "SUBSCRIBE confirmed before the peers had it, and no publish was lost");
    }

    #[test]
    fn a_forward_passed_on_is_caught() {
        let cluster = Cluster::start_with(3, &[("HERALD_PLANTED_BUG", "Reforward")]);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| once_in_order(&cluster)));
        assert!(matches!(caught, Err(_) | Ok(Err(_))), "a node passed on a forwarded publish unnoticed");
    }
}
