//! CLUSTER, READONLY, READWRITE, ASKING; and the slot check shard
//! channels go through in cluster mode (`redirect`).
//!
//! Standalone, every one is refused with Redis' text, after Redis' own
//! subcommand and arity checks (from its command table), so cluster-aware
//! clients learn that this is not a cluster. In cluster mode they answer
//! from the `Topology` in the formats Redis 7.0.15 writes (the
//! differential test compares them with a real Redis cluster). The
//! subcommands that change a Redis cluster's configuration (MEET,
//! ADDSLOTS, FAILOVER…) are refused: Herald's topology comes from its
//! configuration.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::cluster::{slot_of, LinkFigures, Node, Topology, SLOTS};
use crate::protocol::push::Kind;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::redis as redis_table;
use crate::session::{Flow, Session};

const DISABLED: &str = "ERR This instance has cluster support disabled";

pub(crate) fn specs() -> [Spec; 4] {
    let connection = |name, summary| Spec { since: "3.0.0", summary, ..Spec::new(name, 1, "cluster", connection) };
    [
        Spec {
            since: "3.0.0",
            summary: "A container for cluster commands",
            ..Spec::container("cluster", "cluster", subcommands())
        },
        connection("readonly", "Enables read queries for a connection to a cluster replica node"),
        connection("readwrite", "Disables read queries for a connection to a cluster replica node"),
        connection("asking", "Sent by cluster clients after an -ASK redirect"),
    ]
}

/// Redis 7.0.15's CLUSTER subcommands (made once from its command table,
/// so arity and unknown-subcommand errors are Redis'), and MYSHARDID
/// (Redis 7.2's: cluster clients ask for it).
fn subcommands() -> &'static [Spec] {
    static SUBS: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    SUBS.get_or_init(|| {
        let mut subs: Vec<Spec> = redis_table::subcommands_of("cluster")
            .map(|(name, c)| Spec { since: "3.0.0", ..Spec::new(name, c.arity, "cluster", cluster) })
            .collect();
        subs.push(Spec {
            since: "7.2.0",
            summary: "Returns the shard ID of a node",
            flags: &["loading", "stale"],
            acl: &["@slow"],
            ..Spec::new("myshardid", 2, "cluster", cluster)
        });
        subs
    })
}

/// READONLY, READWRITE, ASKING: accepted (every node is a master and
/// serves its slots whatever the connection asks).
/// HELLO's `mode` and INFO's `redis_mode`.
pub(crate) fn mode(s: &Session) -> &'static str {
    if s.hub.cluster.is_some() {
        "cluster"
    } else {
        "standalone"
    }
}

fn connection(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    match s.hub.topology() {
        Some(_) => s.reply(Reply::ok()),
        None => s.error(DISABLED),
    }
    Flow::Done
}

fn cluster(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let Some(t) = s.hub.topology() else {
        s.error(DISABLED);
        return Flow::Done;
    };
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let reply = match sub.as_str() {
        "info" => Ok(Reply::Verbatim(info(s, &t).into())),
        "nodes" => Ok(Reply::Verbatim(nodes(s, &t).into())),
        "slots" => Ok(slots(&t)),
        "shards" => Ok(shards(s, &t)),
        "myid" => Ok(Reply::text(&t.myself().id)),
        // One master per shard: the shard is named by its master's id.
        "myshardid" => Ok(Reply::text(&t.myself().id)),
        "keyslot" => Ok(Reply::Int(slot_of(&args[2]) as i64)),
        "countkeysinslot" => slot_arg(&args[2], "ERR Invalid slot").map(|_| Reply::Int(0)),
        "getkeysinslot" => getkeysinslot(&args[2], &args[3]),
        "count-failure-reports" => known_node(&t, &args[2]).map(|_| Reply::Int(0)),
        "replicas" | "slaves" => known_node(&t, &args[2]).map(|_| Reply::Array(Vec::new())),
        "links" => Ok(links(s, &t)),
        _ => Err(format!(
            "ERR Herald's cluster topology comes from its configuration (cluster-nodes) or etcd (cluster-etcd): CLUSTER {} is not supported",
            sub.to_uppercase()
        )),
    };
    match reply {
        Ok(reply) => s.reply(reply),
        Err(e) => s.error(e),
    }
    Flow::Done
}

/// A slot number argument, or Redis' errors for it.
fn slot_arg(arg: &[u8], invalid: &str) -> Result<u16, String> {
    match parse_i64(arg) {
        None => Err("ERR value is not an integer or out of range".into()),
        Some(n) if n < 0 || n >= SLOTS as i64 => Err(invalid.into()),
        Some(n) => Ok(n as u16),
    }
}

fn getkeysinslot(slot: &[u8], count: &[u8]) -> Result<Reply, String> {
    const INVALID: &str = "ERR Invalid slot or number of keys";
    let (Some(slot), Some(count)) = (parse_i64(slot), parse_i64(count)) else {
        return Err("ERR value is not an integer or out of range".into());
    };
    if slot < 0 || slot >= SLOTS as i64 || count < 0 {
        return Err(INVALID.into());
    }
    // Herald keeps no keys.
    Ok(Reply::Array(Vec::new()))
}

fn known_node(t: &Topology, id: &[u8]) -> Result<(), String> {
    match t.nodes.iter().any(|n| n.id.as_bytes() == id) {
        true => Ok(()),
        false => Err(format!("ERR Unknown node {}", super::c_text(id, usize::MAX))),
    }
}

fn up(s: &Session, t: &Topology, node: usize) -> bool {
    s.hub.cluster.as_ref().is_some_and(|c| c.figures.is_up(&t.nodes[node].id))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// CLUSTER INFO's fields, Redis' names in Redis' order. A peer whose link
/// is down counts its slots as `pfail` (suspected), never `fail`: only the
/// membership source (etcd) votes a node out, by giving its slots away.
/// The state is `fail` while a slot has no owner or this node is fenced.
fn info(s: &Session, t: &Topology) -> String {
    let figures = &s.hub.cluster.as_ref().expect("cluster mode").figures;
    let pfail: usize = t.peers().filter(|&p| !up(s, t, p)).map(|p| t.slot_count(p)).sum();
    let assigned: usize = (0..t.nodes.len()).map(|n| t.slot_count(n)).sum();
    let state = if assigned == SLOTS && !t.fenced { "ok" } else { "fail" };
    let fields: [(&str, String); 17] = [
        ("cluster_state", state.into()),
        ("cluster_slots_assigned", assigned.to_string()),
        ("cluster_slots_ok", (assigned - pfail).to_string()),
        ("cluster_slots_pfail", pfail.to_string()),
        ("cluster_slots_fail", "0".into()),
        ("cluster_known_nodes", t.nodes.len().to_string()),
        ("cluster_size", (0..t.nodes.len()).filter(|&n| t.slot_count(n) > 0).count().to_string()),
        ("cluster_current_epoch", t.epoch.to_string()),
        ("cluster_my_epoch", t.myself().epoch.to_string()),
        ("cluster_stats_messages_sent", figures.sent.load(Ordering::Relaxed).to_string()),
        ("cluster_stats_messages_received", figures.received.load(Ordering::Relaxed).to_string()),
        ("total_cluster_links_buffer_limit_exceeded", figures.limit_exceeded.load(Ordering::Relaxed).to_string()),
        ("cluster_publishes_forwarded", figures.forwarded.load(Ordering::Relaxed).to_string()),
        ("cluster_publishes_dropped", figures.dropped.load(Ordering::Relaxed).to_string()),
        ("cluster_links_up", t.peers().filter(|&p| up(s, t, p)).count().to_string()),
        ("cluster_interest_announced", figures.announced.load(Ordering::Relaxed).to_string()),
        ("cluster_interest_from_peers", figures.wanted_by_peers.load(Ordering::Relaxed).to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}

/// CLUSTER NODES: a line per node, as Redis writes it (`id ip:port@cport
/// flags master ping-sent pong-recv config-epoch link-state slots…`).
fn nodes(s: &Session, t: &Topology) -> String {
    let now = now_ms();
    let mut out = String::new();
    for (i, node) in t.nodes.iter().enumerate() {
        let me = i == t.me;
        let connected = me || up(s, t, i);
        let flags = if me { "myself,master" } else { "master" };
        let pong = if connected { now } else { 0 };
        let link = if connected { "connected" } else { "disconnected" };
        out.push_str(&format!("{} {} {flags} - 0 {pong} {} {link}", node.id, node.addr, node.epoch));
        for (a, b) in t.ranges_of(i) {
            if a == b {
                out.push_str(&format!(" {a}"));
            } else {
                out.push_str(&format!(" {a}-{b}"));
            }
        }
        out.push('\n');
    }
    out
}

/// CLUSTER SLOTS: `[first, last, [ip, port, id, {}]]` per range.
fn slots(t: &Topology) -> Reply {
    let ranges = t.ranges().into_iter().map(|((a, b), owner)| {
        let node = &t.nodes[owner];
        let master = Reply::Array(vec![
            Reply::text(&node.addr.host),
            Reply::Int(node.addr.port as i64),
            Reply::text(&node.id),
            Reply::Map(Vec::new()),
        ]);
        Reply::Array(vec![Reply::Int(a as i64), Reply::Int(b as i64), master])
    });
    Reply::Array(ranges.collect())
}

/// CLUSTER SHARDS: per node (each its own shard), its ranges as a flat
/// list and its one master's fields.
fn shards(s: &Session, t: &Topology) -> Reply {
    let shard = |(i, node): (usize, &Node)| {
        let ranges = t.ranges_of(i).into_iter().flat_map(|(a, b)| [Reply::Int(a as i64), Reply::Int(b as i64)]);
        let health = if i == t.me || up(s, t, i) { "online" } else { "failed" };
        let fields = vec![
            (Reply::text("id"), Reply::text(&node.id)),
            (Reply::text("port"), Reply::Int(node.addr.port as i64)),
            (Reply::text("ip"), Reply::text(&node.addr.host)),
            (Reply::text("endpoint"), Reply::text(&node.addr.host)),
            (Reply::text("role"), Reply::text("master")),
            (Reply::text("replication-offset"), Reply::Int(0)),
            (Reply::text("health"), Reply::text(health)),
        ];
        Reply::Map(vec![
            (Reply::text("slots"), Reply::Array(ranges.collect())),
            (Reply::text("nodes"), Reply::Array(vec![Reply::Map(fields)])),
        ])
    };
    Reply::Array(t.nodes.iter().enumerate().map(shard).collect())
}

/// CLUSTER LINKS: for each peer, in topology order, this node's link to
/// it if up ("to") and its links to this node ("from"), with Redis'
/// fields in Redis' order. Herald's send buffer is the link's queue, so
/// allocated and used are the same figure.
fn links(s: &Session, t: &Topology) -> Reply {
    let Some(cluster) = &s.hub.cluster else { return Reply::Array(Vec::new()) };
    let link = |direction: &str, node: &str, f: &LinkFigures| {
        let queued = f.queued.load(Ordering::Relaxed) as i64;
        Reply::Map(vec![
            (Reply::text("direction"), Reply::text(direction)),
            (Reply::text("node"), Reply::text(node)),
            (Reply::text("create-time"), Reply::Int(f.created_ms as i64)),
            (Reply::text("events"), Reply::text(if queued > 0 { "rw" } else { "r" })),
            (Reply::text("send-buffer-allocated"), Reply::Int(queued)),
            (Reply::text("send-buffer-used"), Reply::Int(queued)),
        ])
    };
    let mut out = Vec::new();
    for p in t.peers() {
        let id = &t.nodes[p].id;
        out.extend(cluster.figures.link_to(id).map(|f| link("to", id, &f)));
        out.extend(cluster.figures.links_from(id).iter().map(|f| link("from", id, f)));
    }
    Reply::Array(out)
}

/// In cluster mode, the error for a command naming shard channels that do
/// not all hash to one slot this node serves: `-CROSSSLOT` or `-MOVED`,
/// in Redis' words. Standalone, or for any other command, `None`.
pub(crate) fn redirect(s: &Session, spec: &Spec, args: &[Bytes]) -> Option<String> {
    let names = shard_channels(spec, args);
    let first = names.first()?;
    let t = s.hub.topology()?;
    let slot = slot_of(first);
    if names[1..].iter().any(|n| slot_of(n) != slot) {
        return Some("CROSSSLOT Keys in request don't hash to the same slot".into());
    }
    moved(&t, slot)
}

/// Unless this node serves `slot`: `-MOVED slot host:port` to its owner,
/// or, in Redis' words, `-CLUSTERDOWN` for a slot of this node's while it
/// is fenced (SPEC §9.7) or a slot no node serves.
pub(crate) fn moved(t: &Arc<Topology>, slot: u16) -> Option<String> {
    if t.serves(slot) {
        return None;
    }
    Some(match t.owner(slot) {
        _ if t.owns(slot) => "CLUSTERDOWN The cluster is down".into(),
        Some(owner) => format!("MOVED {slot} {}", owner.addr.client()),
        None => "CLUSTERDOWN Hash slot not served".into(),
    })
}

/// The shard channels a request names: SPUBLISH's first argument, every
/// argument of SSUBSCRIBE and SUNSUBSCRIBE.
pub(crate) fn shard_channels<'a>(spec: &Spec, args: &'a [Bytes]) -> &'a [Bytes] {
    match (spec.publishes, spec.shard) {
        (Some(Kind::Shard), _) => &args[1..2],
        (_, true) => &args[1..],
        _ => &[],
    }
}
