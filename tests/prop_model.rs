//! The subscription state machine against a small reference model: random
//! (P|S)(UN)SUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB sequences from three
//! connections (one RESP3), run on Herald and on redis-server; every reply,
//! count and delivery must be what the model predicts.

mod support;

use bytes::Bytes;
use herald::pattern::reference as matches;
use herald::resp::Reply;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use support::{herald, redis, Conn};

const CHANNELS: &[&str] = &["a", "b", "ab", "ba", "aa"];
const PATTERNS: &[&str] = &["a*", "*b", "?", "[ab]b", "*", "a?", "[^a]*"];
const CONNS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe(usize, Kind, Vec<usize>),
    /// An empty list means "all".
    Unsubscribe(usize, Kind, Vec<usize>),
    Publish(usize, usize, u8),
    SPublish(usize, usize, u8),
    NumSub(usize, Vec<usize>),
    ShardNumSub(usize, Vec<usize>),
    Channels(usize, Option<usize>),
    Ping(usize),
}

impl Op {
    /// The connection it runs on.
    fn conn(&self) -> usize {
        match self {
            Op::Subscribe(c, ..)
            | Op::Unsubscribe(c, ..)
            | Op::Publish(c, ..)
            | Op::SPublish(c, ..)
            | Op::NumSub(c, _)
            | Op::ShardNumSub(c, _)
            | Op::Channels(c, _)
            | Op::Ping(c) => *c,
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0..CONNS;
    let kind = prop_oneof![Just(Kind::Channel), Just(Kind::Pattern), Just(Kind::Shard)];
    let names = prop::collection::vec(0..CHANNELS.len().max(PATTERNS.len()), 0..3);
    prop_oneof![
        3 => (conn.clone(), kind.clone(), names.clone()).prop_map(|(c, k, n)| Op::Subscribe(c, k, if n.is_empty() { vec![0] } else { n })),
        2 => (conn.clone(), kind, names.clone()).prop_map(|(c, k, n)| Op::Unsubscribe(c, k, n)),
        4 => (conn.clone(), 0..CHANNELS.len(), any::<u8>()).prop_map(|(c, ch, m)| Op::Publish(c, ch, m)),
        1 => (conn.clone(), 0..CHANNELS.len(), any::<u8>()).prop_map(|(c, ch, m)| Op::SPublish(c, ch, m)),
        1 => (conn.clone(), names.clone()).prop_map(|(c, n)| Op::NumSub(c, n)),
        1 => (conn.clone(), names).prop_map(|(c, n)| Op::ShardNumSub(c, n)),
        1 => (conn.clone(), prop::option::of(0..PATTERNS.len())).prop_map(|(c, p)| Op::Channels(c, p)),
        1 => conn.prop_map(Op::Ping),
    ]
}

/// One connection as the model sees it.
#[derive(Default)]
struct Client {
    resp3: bool,
    subs: [Vec<Bytes>; 3],
    /// Deliveries owed, one group per publish: a message first (if any),
    /// then pmessages in no particular order.
    pending: Vec<Vec<Reply>>,
}

impl Client {
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.subs[2].len(),
            _ => self.subs[0].len() + self.subs[1].len(),
        }
    }

    fn subscribed(&self) -> bool {
        self.subs.iter().any(|s| !s.is_empty())
    }
}

struct Model {
    prefix: String,
    clients: Vec<Client>,
}

fn b(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// What one op must produce on its connection: replies whose order is
/// fixed, and (for "unsubscribe all") a run whose names may come in any
/// order but whose counts must count down in order.
struct Expected {
    replies: Vec<Reply>,
    any_order_names: bool,
    /// One array reply whose element order is the server's business
    /// (PUBSUB CHANNELS).
    any_order_items: bool,
    /// Frames in this range may come in any order (the pmessages of one
    /// publish, delivered to the publisher itself).
    any_order_frames: std::ops::Range<usize>,
}

impl Model {
    fn name(&self, kind: Kind, i: usize) -> Bytes {
        let list = if kind == Kind::Pattern { PATTERNS } else { CHANNELS };
        Bytes::from(format!("{}{}", self.prefix, list[i % list.len()]))
    }

    fn slot(kind: Kind) -> usize {
        kind as usize
    }

    fn verbs(kind: Kind) -> (&'static str, &'static str) {
        match kind {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }

    fn apply(&mut self, op: &Op) -> Expected {
        let fixed =
            |replies| Expected { replies, any_order_names: false, any_order_items: false, any_order_frames: 0..0 };
        let c = op.conn();
        let restricted = self.clients[c].subscribed() && !self.clients[c].resp3;
        let refuse = |cmd: &str| {
            Reply::Error(format!(
                "ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ))
        };
        match op {
            Op::Subscribe(_, kind, names) => {
                let names: Vec<Bytes> = names.iter().map(|i| self.name(*kind, *i)).collect();
                let client = &mut self.clients[c];
                let mut out = Vec::new();
                for n in names {
                    if !client.subs[Self::slot(*kind)].contains(&n) {
                        client.subs[Self::slot(*kind)].push(n.clone());
                    }
                    let count = client.count(*kind) as i64;
                    out.push(Reply::Push(vec![b(Self::verbs(*kind).0), Reply::Bulk(n), Reply::Int(count)]));
                }
                fixed(out)
            }
            Op::Unsubscribe(_, kind, names) => {
                let all = names.is_empty();
                let names: Vec<Bytes> = if all {
                    self.clients[c].subs[Self::slot(*kind)].clone()
                } else {
                    names.iter().map(|i| self.name(*kind, *i)).collect()
                };
                let client = &mut self.clients[c];
                let verb = Self::verbs(*kind).1;
                if names.is_empty() {
                    let count = client.count(*kind) as i64;
                    return fixed(vec![Reply::Push(vec![b(verb), Reply::Nil, Reply::Int(count)])]);
                }
                let mut out = Vec::new();
                for n in names {
                    client.subs[Self::slot(*kind)].retain(|x| *x != n);
                    let count = client.count(*kind) as i64;
                    out.push(Reply::Push(vec![b(verb), Reply::Bulk(n), Reply::Int(count)]));
                }
                Expected { replies: out, any_order_names: all, any_order_items: false, any_order_frames: 0..0 }
            }
            Op::Publish(_, ch, msg) | Op::SPublish(_, ch, msg) => {
                let shard = matches!(op, Op::SPublish(..));
                if restricted {
                    return fixed(vec![refuse(if shard { "spublish" } else { "publish" })]);
                }
                let channel = self.name(Kind::Channel, *ch);
                let payload = Bytes::from(msg.to_string());
                let mut total = 0;
                let mut own = Vec::new();
                for (i, client) in self.clients.iter_mut().enumerate() {
                    let mut group = Vec::new();
                    let (slot, word) = if shard { (2, "smessage") } else { (0, "message") };
                    if client.subs[slot].contains(&channel) {
                        group.push(Reply::Push(vec![
                            b(word),
                            Reply::Bulk(channel.clone()),
                            Reply::Bulk(payload.clone()),
                        ]));
                    }
                    if !shard {
                        for p in client.subs[1].iter().filter(|p| matches(p, &channel)) {
                            group.push(Reply::Push(vec![
                                b("pmessage"),
                                Reply::Bulk(p.clone()),
                                Reply::Bulk(channel.clone()),
                                Reply::Bulk(payload.clone()),
                            ]));
                        }
                    }
                    total += group.len();
                    if group.is_empty() {
                        continue;
                    }
                    if i == c {
                        own = group; // Redis writes them before the reply.
                    } else {
                        client.pending.push(group);
                    }
                }
                let head = own.first().is_some_and(|r| matches!(r, Reply::Push(v) if v[0] != b("pmessage"))) as usize;
                let any_order_frames = head.min(own.len())..own.len();
                let mut replies = own;
                replies.push(Reply::Int(total as i64));
                Expected { replies, any_order_names: false, any_order_items: false, any_order_frames }
            }
            Op::NumSub(_, names) | Op::ShardNumSub(_, names) => {
                let shard = matches!(op, Op::ShardNumSub(..));
                if restricted {
                    return fixed(vec![refuse(if shard { "pubsub|shardnumsub" } else { "pubsub|numsub" })]);
                }
                let slot = if shard { 2 } else { 0 };
                let mut out = Vec::new();
                for i in names {
                    let n = self.name(Kind::Channel, *i);
                    let count = self.clients.iter().filter(|cl| cl.subs[slot].contains(&n)).count();
                    out.extend([Reply::Bulk(n), Reply::Int(count as i64)]);
                }
                fixed(vec![Reply::Array(out)])
            }
            Op::Channels(_, pattern) => {
                if restricted {
                    return fixed(vec![refuse("pubsub|channels")]);
                }
                let pattern = match pattern {
                    Some(p) => self.name(Kind::Pattern, *p),
                    None => Bytes::from(format!("{}*", self.prefix)),
                };
                let mut active: Vec<Bytes> = self.clients.iter().flat_map(|cl| cl.subs[0].iter().cloned()).collect();
                active.sort();
                active.dedup();
                active.retain(|ch| matches(&pattern, ch));
                Expected {
                    replies: vec![Reply::Array(active.into_iter().map(Reply::Bulk).collect())],
                    any_order_names: false,
                    any_order_items: true,
                    any_order_frames: 0..0,
                }
            }
            Op::Ping(_) => {
                if restricted {
                    fixed(vec![Reply::Array(vec![b("pong"), b("")])])
                } else {
                    fixed(vec![Reply::Simple("PONG")])
                }
            }
        }
    }

    fn command(&self, op: &Op) -> Vec<Bytes> {
        let mut args: Vec<Bytes> = Vec::new();
        let mut word = |w: &str| args.push(Bytes::copy_from_slice(w.as_bytes()));
        match op {
            Op::Subscribe(_, k, _) => word(Self::verbs(*k).0),
            Op::Unsubscribe(_, k, _) => word(Self::verbs(*k).1),
            Op::Publish(..) => word("PUBLISH"),
            Op::SPublish(..) => word("SPUBLISH"),
            Op::NumSub(..) => ["PUBSUB", "NUMSUB"].into_iter().for_each(word),
            Op::ShardNumSub(..) => ["PUBSUB", "SHARDNUMSUB"].into_iter().for_each(word),
            Op::Channels(..) => ["PUBSUB", "CHANNELS"].into_iter().for_each(word),
            Op::Ping(_) => word("PING"),
        }
        match op {
            Op::Subscribe(_, k, names) | Op::Unsubscribe(_, k, names) => {
                args.extend(names.iter().map(|i| self.name(*k, *i)));
            }
            Op::Publish(_, ch, m) | Op::SPublish(_, ch, m) => {
                args.push(self.name(Kind::Channel, *ch));
                args.push(Bytes::from(m.to_string()));
            }
            Op::NumSub(_, names) | Op::ShardNumSub(_, names) => {
                args.extend(names.iter().map(|i| self.name(Kind::Channel, *i)));
            }
            Op::Channels(_, p) => args.push(match p {
                Some(p) => self.name(Kind::Pattern, *p),
                None => Bytes::from(format!("{}*", self.prefix)),
            }),
            Op::Ping(_) => {}
        }
        args
    }
}

fn encode(r: &Reply, resp3: bool) -> Bytes {
    let mut buf = bytes::BytesMut::new();
    r.encode(resp3, &mut buf);
    buf.freeze()
}

/// The elements of an array reply, sorted.
fn sorted_items(frame: &[u8]) -> Vec<String> {
    let (decoded, _) = redis_protocol::resp3::decode::complete::decode(frame).unwrap().unwrap();
    let mut items: Vec<String> = match decoded {
        redis_protocol::resp3::types::OwnedFrame::Array { data, .. } => data.iter().map(|f| format!("{f:?}")).collect(),
        other => vec![format!("not an array: {other:?}")],
    };
    items.sort();
    items
}

/// Reads the deliveries a connection is owed, group by group.
fn drain(conn: &mut Conn, client: &mut Client) -> Result<(), TestCaseError> {
    for group in client.pending.drain(..) {
        let mut want: Vec<Bytes> = group.iter().map(|r| encode(r, client.resp3)).collect();
        let mut got: Vec<Bytes> = (0..want.len()).map(|_| conn.frame()).collect();
        // A message (if any) comes first; the pmessages of several
        // matching patterns may come in any order.
        let head = matches!(&group[0], Reply::Push(v) if v[0] != b("pmessage")) as usize;
        want[head..].sort();
        got[head..].sort();
        prop_assert_eq!(got, want);
    }
    Ok(())
}

/// Runs `ops` on the server at `port` and checks every frame.
fn run_case(port: u16, prefix: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut conns: Vec<Conn> = (0..CONNS).map(|_| Conn::open(port)).collect();
    let mut model = Model { prefix: prefix.into(), clients: (0..CONNS).map(|_| Client::default()).collect() };
    conns[0].cmd(&["HELLO", "3"]);
    model.clients[0].resp3 = true;
    for op in ops {
        let expected = model.apply(op);
        let c = op.conn();
        let conn = &mut conns[c];
        let client = &mut model.clients[c];
        drain(conn, client)?;
        let args = model.command(op);
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        conn.send_cmd(&args);
        let resp3 = model.clients[c].resp3;
        let mut want: Vec<Bytes> = expected.replies.iter().map(|r| encode(r, resp3)).collect();
        let mut got: Vec<Bytes> = (0..want.len()).map(|_| conn.frame()).collect();
        want[expected.any_order_frames.clone()].sort();
        got[expected.any_order_frames.clone()].sort();
        if expected.any_order_names {
            // Names in any order; the counts still step down in order.
            let split = |f: &Bytes| f.iter().rposition(|b| *b == b':').expect("a count");
            let counts = |v: &[Bytes]| v.iter().map(|f| f[split(f)..].to_vec()).collect::<Vec<_>>();
            prop_assert_eq!(counts(&got), counts(&want), "op {:?}", op);
            let names = |v: &[Bytes]| {
                let mut n: Vec<Vec<u8>> = v.iter().map(|f| f[..split(f)].to_vec()).collect();
                n.sort();
                n
            };
            prop_assert_eq!(names(&got), names(&want), "op {:?}", op);
        } else if expected.any_order_items {
            prop_assert_eq!(sorted_items(&got[0]), sorted_items(&want[0]), "op {:?}", op);
        } else {
            prop_assert_eq!(got, want, "op {:?}", op);
        }
    }
    for (conn, client) in conns.iter_mut().zip(model.clients.iter_mut()) {
        drain(conn, client)?;
    }
    Ok(())
}

#[test]
fn subscriptions_follow_the_model_on_herald_and_redis() {
    let (h, r) = (herald(), redis());
    let config = Config {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/prop_model.txt",
        ))),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let case = std::cell::Cell::new(0u32);
    runner
        .run(&prop::collection::vec(op(), 1..40), |ops| {
            // A fresh name space per case: earlier cases' connections may
            // still be closing on the server.
            case.set(case.get() + 1);
            run_case(h.port, &format!("h{}:", case.get()), &ops)?;
            run_case(r.port, &format!("r{}:", case.get()), &ops)?;
            Ok(())
        })
        .unwrap();
}
