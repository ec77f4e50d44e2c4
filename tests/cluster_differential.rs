//! Cluster mode against a real Redis 7.0.15 cluster: the same scripts on
//! a 3-node Herald cluster and a 3-node Redis cluster (slots split alike),
//! with what must differ masked (ports, node ids, client ids). What
//! cluster clients parse — CLUSTER replies, MOVED and CROSSSLOT, the
//! order of Redis' checks — must be byte-identical.

mod support;

use support::cluster::{eventually, field, redis_cluster, Cluster};
use support::{normalize, run_script, Conn, Server};

/// `transcript` with each node's port and id replaced by its index.
fn masked(transcript: &str, nodes: &[Server]) -> String {
    let mut out = normalize(transcript);
    for (i, node) in nodes.iter().enumerate() {
        let id = Conn::open(node.port).cmd(&["CLUSTER", "MYID"]);
        let id = String::from_utf8_lossy(&id[5..45]).into_owned();
        out = out.replace(&id, &format!("<id{i}>")).replace(&node.port.to_string(), &format!("<port{i}>"));
    }
    out
}

fn same_as_redis_cluster(script: &str) {
    let herald = Cluster::start(3);
    let redis = redis_cluster(3);
    let ours = masked(&run_script(herald.port(0), script), &herald.nodes);
    let theirs = masked(&run_script(redis[0].port, script), &redis);
    assert_eq!(ours, theirs, "Herald's cluster (left) and Redis' (right) differ");
}

#[test]
fn cluster_commands_and_redirections_are_redis_clusters() {
    // On node 0 (slots 0-5460): "bar" is slot 5061, here; "foo" is slot
    // 12182, node 2's.
    same_as_redis_cluster(
        r#"
        c> CLUSTER KEYSLOT foo
        c> CLUSTER KEYSLOT {user1000}.following
        c> CLUSTER KEYSLOT "{}x"
        c> CLUSTER KEYSLOT
        c> CLUSTER COUNTKEYSINSLOT 7
        c> CLUSTER COUNTKEYSINSLOT 99999
        c> CLUSTER COUNTKEYSINSLOT -1
        c> CLUSTER COUNTKEYSINSLOT x
        c> CLUSTER GETKEYSINSLOT 7 10
        c> CLUSTER GETKEYSINSLOT 1 -1
        c> CLUSTER GETKEYSINSLOT 99999 1
        c> CLUSTER GETKEYSINSLOT x 1
        c> CLUSTER GETKEYSINSLOT 1 x
        c> CLUSTER NOPE
        c> CLUSTER SLAVES nosuchnode
        c> CLUSTER REPLICAS nosuchnode
        c> CLUSTER COUNT-FAILURE-REPORTS nosuchnode
        c> CLUSTER SLOTS
        c> CLUSTER MYID
        c> READONLY
        c> READWRITE
        c> ASKING
        c> INFO cluster
        c> SPUBLISH foo x
        c> SPUBLISH bar x
        c> SSUBSCRIBE foo bar
        c> SSUBSCRIBE foo
        c> SUNSUBSCRIBE foo
        c> SUNSUBSCRIBE bar foo
        c> PUBSUB SHARDNUMSUB foo bar
        c> PUBLISH anywhere x
        s> SSUBSCRIBE bar {bar}x
        s> read 1
        s> CLUSTER MYID
        s> SSUBSCRIBE foo
        s> SPUBLISH foo x
        s> SPUBLISH bar x
        p> SPUBLISH {bar}x hello
        s> read 1
        s> SUNSUBSCRIBE bar
        # One name left: Redis' order of several is its dict's.
        s> SUNSUBSCRIBE
        m> MULTI
        m> SPUBLISH foo x
        m> SPUBLISH bar x
        m> EXEC
        h> HELLO 3
        h> CLUSTER SLOTS
        "#,
    );
}

/// Node `at`'s CLUSTER LINKS, one line per link, sorted (Redis lists its
/// peers in its dict's order): each field's name in the reply's order,
/// the peer as its index, the times and buffer figures checked for their
/// kind and then masked, since they are this moment's.
fn links_of(nodes: &[Server], at: usize) -> Vec<String> {
    let ids: Vec<String> = nodes
        .iter()
        .map(|n| String::from_utf8_lossy(&Conn::open(n.port).cmd(&["CLUSTER", "MYID"])[5..45]).into_owned())
        .collect();
    let reply = Conn::open(nodes[at].port).cmd(&["CLUSTER", "LINKS"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let count: usize = lines.next().and_then(|l| l.strip_prefix('*')).expect("an array").parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut links: Vec<String> = (0..count)
        .map(|_| {
            assert_eq!(lines.next(), Some("*12"), "a link is 6 fields in RESP2: {text}");
            let mut value = || {
                let line = lines.next().expect("a value");
                match line.strip_prefix(':') {
                    Some(n) => n.to_string(),
                    None => lines.next().expect("a bulk string").to_string(),
                }
            };
            (0..6)
                .map(|_| {
                    let (name, v) = (value(), value());
                    let v = match name.as_str() {
                        "node" => format!("<id{}>", ids.iter().position(|id| *id == v).expect("a node of the cluster")),
                        "create-time" => {
                            let t: i64 = v.parse().expect("milliseconds");
                            assert!((now - 3_600_000..=now + 1000).contains(&t), "create-time {t} is not this hour's");
                            "<ms>".into()
                        }
                        "events" => {
                            assert!(v == "r" || v == "rw", "events {v}");
                            "<r|rw>".into()
                        }
                        "send-buffer-allocated" | "send-buffer-used" => {
                            v.parse::<u64>().expect("bytes");
                            "<bytes>".into()
                        }
                        _ => v,
                    };
                    format!("{name}={v}")
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    links.sort();
    links
}

#[test]
fn cluster_links_are_redis_clusters() {
    let herald = Cluster::start(3);
    let redis = redis_cluster(3);
    herald.wait_links(0, 2);
    // A peer's link to node 0 is listed once it has said HELLO (Herald)
    // or its first message came (Redis, whose cluster may be ok before
    // every peer has connected back).
    eventually("node 0 lists both peers' links to it", || links_of(&herald.nodes, 0).len() == 4);
    eventually("Redis' node 0 lists both peers' links to it", || links_of(&redis, 0).len() == 4);
    let ours = links_of(&herald.nodes, 0);
    assert_eq!(ours, links_of(&redis, 0), "Herald's CLUSTER LINKS (left) and Redis' (right) differ");
    assert_eq!(ours.len(), 4, "a link to and a link from each of the two peers: {ours:?}");
}

/// Every node's bus messages sent and received (CLUSTER INFO), summed.
fn bus_totals(nodes: &[Server]) -> (u64, u64) {
    nodes.iter().fold((0, 0), |(s, r), n| {
        let mut c = Conn::open(n.port);
        let mut n = |f: &str| field(&mut c, f).parse::<u64>().expect("a count");
        (s + n("cluster_stats_messages_sent"), r + n("cluster_stats_messages_received"))
    })
}

/// Publishes 100 on node 0 to a subscriber on node 2; returns node 2's
/// bus messages received before and after, once the cluster's sent and
/// received totals agree (nothing in flight).
fn bus_counts_across(nodes: &[Server]) -> (u64, u64) {
    let mut sub = Conn::open(nodes[2].port);
    // Herald confirms a subscription once the peers have it (SPEC §9);
    // Redis Cluster sends every publish everywhere.
    sub.cmd(&["SUBSCRIBE", "news"]);
    let received = |at: &Server| field(&mut Conn::open(at.port), "cluster_stats_messages_received").parse::<u64>();
    let mut publisher = Conn::open(nodes[0].port);
    let before = received(&nodes[2]).unwrap();
    for i in 0..100 {
        publisher.cmd(&["PUBLISH", "news", &i.to_string()]);
    }
    for _ in 0..100 {
        sub.frame();
    }
    eventually("every bus message sent is received", || {
        let (sent, got) = bus_totals(nodes);
        sent == got
    });
    (before, received(&nodes[2]).unwrap())
}

#[test]
fn bus_messages_are_counted_as_redis_counts_them() {
    let herald = Cluster::start(3);
    let redis = redis_cluster(3);
    for (name, nodes) in [("Herald", &herald.nodes), ("Redis", &redis)] {
        let (before, after) = bus_counts_across(nodes);
        assert!(
            after >= before + 100,
            "{name}: node 2 counted {} bus messages for 100 forwarded publishes",
            after - before
        );
    }
}
