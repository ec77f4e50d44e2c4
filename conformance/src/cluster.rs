//! §9, cluster mode: judged through every node of a cluster
//! (`--cluster-nodes`). Shard channels are found at their slot's node by
//! asking (the node that does not answer `-MOVED`), so the kit needs no
//! knowledge of how slots are split.

use std::time::Duration;

use crate::conn::{Conn, Frame, REPLY_TIMEOUT};
use crate::wire::confirmation;
use crate::{ensure, text, Outcome, Target, Verdict};

/// Every node as a target (the first is `--addr`'s).
fn nodes(t: &Target) -> Result<Vec<Target>, Verdict> {
    if t.cluster.len() < 2 {
        return Err(Verdict::NotApplicable("needs a cluster: --cluster-nodes with at least two nodes".into()));
    }
    Ok(t.cluster.iter().map(|addr| Target { addr: addr.clone(), ..t.clone() }).collect())
}

fn push(kind: &str, name: &str, payload: &str) -> Vec<u8> {
    herald_client::encode_command(&[kind, name, payload])
}

/// The frame's integer, if it is one.
fn int(f: &Frame) -> Option<i64> {
    f.value.as_int()
}

/// What CLUSTER LINKS says of each link, in Redis' order.
const LINK_FIELDS: [&str; 6] =
    ["direction", "node", "create-time", "events", "send-buffer-allocated", "send-buffer-used"];

/// 9.1: every node says it is a cluster node, names itself, and describes
/// the same slot map; KEYSLOT is Redis' CRC16; CLUSTER LINKS names peers
/// of the cluster with Redis' fields (9.4).
pub(crate) fn cluster_face(t: &Target) -> Outcome {
    let nodes = nodes(t)?;
    let (mut slots, mut ids) = (Vec::new(), Vec::new());
    for n in &nodes {
        let mut c = Conn::open(n)?;
        let enabled = crate::info_field(&mut c, "cluster", "cluster_enabled")?;
        ensure!(enabled == "1", "{}: INFO cluster_enabled:{enabled}", n.addr);
        slots.push(c.call(&["CLUSTER", "SLOTS"])?.raw);
        let id = c.call(&["CLUSTER", "MYID"])?;
        let id = text(&id.value).ok_or_else(|| format!("{}: CLUSTER MYID answered {}", n.addr, id.text()))?;
        ensure!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{}: CLUSTER MYID {id}", n.addr);
        ids.push(id);
        for (name, slot) in [("foo", 12182), ("{user1000}.following", 3443), ("a{}{foo}", 700)] {
            let got = c.call(&["CLUSTER", "KEYSLOT", name])?;
            ensure!(int(&got) == Some(slot), "{}: CLUSTER KEYSLOT {name} answered {}, not {slot}", n.addr, got.text());
        }
    }
    ensure!(slots.iter().all(|s| *s == slots[0]), "the nodes' CLUSTER SLOTS differ");
    for (i, id) in ids.iter().enumerate() {
        ensure!(!ids[..i].contains(id), "two nodes say they are {id}");
    }
    for (i, n) in nodes.iter().enumerate() {
        let got = Conn::open(n)?.call(&["CLUSTER", "LINKS"])?;
        let herald_client::Value::Array(links) = &got.value else {
            return Err(Verdict::Fail(format!("{}: CLUSTER LINKS answered {}", n.addr, got.text())));
        };
        for link in links {
            let herald_client::Value::Array(fields) = link else {
                return Err(Verdict::Fail(format!("{}: a CLUSTER LINKS entry is not a map: {}", n.addr, got.text())));
            };
            let names: Vec<String> = fields.iter().step_by(2).filter_map(text).collect();
            ensure!(names == LINK_FIELDS, "{}: a CLUSTER LINKS entry has the fields {names:?}", n.addr);
            let (direction, node) = (text(&fields[1]).unwrap_or_default(), text(&fields[3]).unwrap_or_default());
            ensure!(direction == "to" || direction == "from", "{}: CLUSTER LINKS direction {direction}", n.addr);
            ensure!(node != ids[i] && ids.contains(&node), "{}: CLUSTER LINKS names {node}, not a peer", n.addr);
            for at in [5, 9, 11] {
                ensure!(
                    fields[at].as_int().is_some_and(|v| v >= 0),
                    "{}: CLUSTER LINKS {} is not a count",
                    n.addr,
                    names[at / 2]
                );
            }
        }
    }
    Ok(())
}

/// The node (index) serving `channel`'s slot: the one SPUBLISH does not
/// redirect; every other must redirect with `-MOVED <slot> <addr>`.
fn owner(nodes: &[Target], channel: &str) -> Result<usize, Verdict> {
    let mut owner = None;
    let mut moved = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let got = Conn::open(n)?.call(&["SPUBLISH", channel, "probe"])?;
        match int(&got) {
            Some(_) => {
                ensure!(owner.is_none(), "two nodes served SPUBLISH {channel}");
                owner = Some(i);
            }
            None => {
                let reply = String::from_utf8_lossy(&got.raw).trim_end().to_string();
                ensure!(reply.starts_with("-MOVED "), "{}: SPUBLISH {channel} answered {}", n.addr, got.text());
                moved.push(reply);
            }
        }
    }
    let owner = owner.ok_or_else(|| format!("no node served SPUBLISH {channel}: {moved:?}"))?;
    let port = nodes[owner].addr.rsplit(':').next().unwrap_or_default().to_string();
    for m in &moved {
        ensure!(m.ends_with(&format!(":{port}")), "{m} does not name the slot's node ({})", nodes[owner].addr);
    }
    Ok(owner)
}

/// 9.2: shard channels are served by their slot's node alone; elsewhere
/// `-MOVED`; names of two slots in one command `-CROSSSLOT`.
pub(crate) fn shard_channels_at_their_node(t: &Target) -> Outcome {
    let nodes = nodes(t)?;
    let channel = t.channel("{shard}one");
    let at = owner(&nodes, &channel)?;
    let mut sub = Conn::open(&nodes[at])?;
    let slot = |c: &mut Conn, name: &str| c.call(&["CLUSTER", "KEYSLOT", name]).map(|f| int(&f));
    let mine = slot(&mut sub, &channel)?;
    let mut other = None;
    for i in 0..100 {
        let candidate = t.channel(&format!("other{i}"));
        if slot(&mut sub, &candidate)? != mine {
            other = Some(candidate);
            break;
        }
    }
    let other = other.ok_or_else(|| "no name in another slot".to_string())?;
    let crossslot = sub.call(&["SSUBSCRIBE", &channel, &other])?;
    ensure!(
        crossslot.raw == b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
        "SSUBSCRIBE over two slots answered {}",
        crossslot.text()
    );
    let confirm = sub.call(&["SSUBSCRIBE", &channel])?;
    ensure!(confirm.raw == confirmation(false, "ssubscribe", &channel, 1), "SSUBSCRIBE answered {}", confirm.text());
    let mut publisher = Conn::open(&nodes[at])?;
    let got = publisher.call(&["SPUBLISH", &channel, "hi"])?;
    ensure!(int(&got) == Some(1), "SPUBLISH at the slot's node counted {}", got.text());
    let message = sub.read()?;
    ensure!(message.raw == push("smessage", &channel, "hi"), "the shard subscriber got {}", message.text());
    Ok(())
}

/// 9.3: a publish on one node reaches subscribers on every node, once
/// each, in the publisher's order, each message before its pmessage.
pub(crate) fn classic_across_nodes(t: &Target) -> Outcome {
    let nodes = nodes(t)?;
    let (a, b, pattern) = (t.channel("x:a"), t.channel("x:b"), t.channel("x:*"));
    let mut subs = Vec::new();
    for n in &nodes {
        let mut c = Conn::open(n)?;
        c.call(&["SUBSCRIBE", &a, &b])?;
        c.read()?;
        c.call(&["PSUBSCRIBE", &pattern])?;
        subs.push(c);
    }
    let mut publisher = Conn::open(&nodes[0])?;
    let n = 200;
    let mut pipeline = Vec::new();
    for i in 0..n {
        let ch = if i % 2 == 0 { &a } else { &b };
        pipeline.extend(herald_client::encode_command(&["PUBLISH", ch, &i.to_string()]));
    }
    pipeline.extend(herald_client::encode_command(&["PUBLISH", &a, "end"]));
    publisher.write(&pipeline)?;
    for _ in 0..=n {
        publisher.read()?;
    }
    for (k, sub) in subs.iter_mut().enumerate() {
        let payloads = (0..n).map(|i| i.to_string()).chain(["end".to_string()]);
        for (i, payload) in payloads.enumerate() {
            let ch = if i % 2 == 0 || payload == "end" { &a } else { &b };
            let m = sub.read()?;
            ensure!(m.raw == push("message", ch, &payload), "node {k}: expected message {payload}, got {}", m.text());
            let p = sub.read()?;
            let want = herald_client::encode_command(&["pmessage", &pattern, ch, &payload]);
            ensure!(p.raw == want, "node {k}: expected pmessage {payload}, got {}", p.text());
        }
        let extra = sub.read_within(Duration::from_millis(200))?;
        ensure!(extra.is_none(), "node {k}: more than once: {}", extra.map(|f| f.text()).unwrap_or_default());
    }
    Ok(())
}

/// 9.5: a publish on another node right after a subscriber saw its
/// confirmation is delivered (50 fresh channels, every pair of nodes).
pub(crate) fn boundary_across_nodes(t: &Target) -> Outcome {
    let nodes = nodes(t)?;
    let mut subs: Vec<Conn> = nodes.iter().map(Conn::open).collect::<Result<_, _>>()?;
    let mut pubs: Vec<Conn> = nodes.iter().map(Conn::open).collect::<Result<_, _>>()?;
    for round in 0..50 {
        let (s, p) = (round % nodes.len(), (round + 1 + round / nodes.len()) % nodes.len());
        let p = if p == s { (s + 1) % nodes.len() } else { p };
        let channel = t.channel(&format!("boundary:{round}"));
        subs[s].call(&["SUBSCRIBE", &channel])?;
        pubs[p].call(&["PUBLISH", &channel, "m"])?;
        let got = subs[s].read_within(REPLY_TIMEOUT)?;
        let got =
            got.ok_or_else(|| format!("round {round}: published on node {p} after node {s}'s confirmation: lost"))?;
        ensure!(got.raw == push("message", &channel, "m"), "round {round}: got {}", got.text());
        subs[s].call(&["UNSUBSCRIBE", &channel])?;
    }
    Ok(())
}
