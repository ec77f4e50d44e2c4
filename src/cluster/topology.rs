//! `Topology`: the nodes and the owner of each slot.

use sha2::{Digest, Sha256};

use super::SLOTS;

/// A node's announced address: clients connect to `host:port`, peers to
/// `host:bus_port` (Redis' `cluster-port`, by default `port + 10000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NodeAddr {
    pub host: String,
    pub port: u16,
    pub bus_port: u16,
}

impl NodeAddr {
    /// `host:port` or `host:port@bus_port`, as CLUSTER NODES writes them.
    pub(crate) fn parse(text: &str) -> Result<NodeAddr, String> {
        let (addr, bus) = match text.split_once('@') {
            Some((addr, bus)) => (addr, Some(bus)),
            None => (text, None),
        };
        let bad = || format!("'{text}' is not host:port or host:port@busport");
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let bus_port = match bus {
            Some(bus) => bus.parse().map_err(|_| bad())?,
            None => port.checked_add(10000).ok_or_else(|| format!("{text}: port + 10000 is no port; give @busport"))?,
        };
        if host.is_empty() || port == 0 || bus_port == 0 {
            return Err(bad());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(NodeAddr { host, port, bus_port })
    }

    /// `host:port`, as MOVED and clients write it.
    pub(crate) fn client(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}@{}", self.host, self.port, self.bus_port)
    }
}

/// One node as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// 40 hex digits, as Redis' node ids. Derived from the address, so every
    /// node of a static topology names every other one the same way
    /// without exchanging anything.
    pub id: String,
    pub addr: NodeAddr,
    /// Its config epoch (CLUSTER NODES, `cluster_my_epoch`).
    pub epoch: u64,
}

/// Which node serves each slot, and which node this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    pub nodes: Vec<Node>,
    /// This node's index in `nodes`.
    pub me: usize,
    /// The version of the whole map (`cluster_current_epoch`).
    pub epoch: u64,
    /// The index in `nodes` of each slot's owner (`NO_OWNER`: a slot no
    /// node serves yet, as before a membership source's first map).
    owners: Box<[u16]>,
    /// This node can no longer prove it owns its slots (its membership
    /// lease may have expired: SPEC §9.7) and serves none of them.
    pub fenced: bool,
}

/// The owner of a slot no node serves.
pub(crate) const NO_OWNER: u16 = u16::MAX;

/// A slot range, both ends included, as Redis writes them (`0-5460`).
pub(crate) type Range = (u16, u16);

impl Topology {
    /// `nodes` in the order given, `me` among them, each serving the
    /// ranges `assigned` gives it; with none assigned at all, the slots
    /// are split evenly in list order exactly as `redis-cli --cluster
    /// create` splits them (three nodes: 0-5460, 5461-10922, 10923-16383).
    /// Every slot must have exactly one owner.
    pub(crate) fn new(
        nodes: Vec<NodeAddr>,
        me: &NodeAddr,
        assigned: &[(NodeAddr, Vec<Range>)],
    ) -> Result<Topology, String> {
        if nodes.is_empty() || nodes.len() > u16::MAX as usize {
            return Err("a cluster needs between 1 and 65535 nodes".into());
        }
        for (i, a) in nodes.iter().enumerate() {
            if nodes[..i].iter().any(|b| b.client() == a.client()) {
                return Err(format!("{} is listed twice", a.client()));
            }
        }
        let me = nodes
            .iter()
            .position(|n| n.client() == me.client())
            .ok_or_else(|| format!("this node's address {} is not in the cluster's node list", me.client()))?;
        let mut owners = vec![u16::MAX; SLOTS];
        if assigned.is_empty() {
            for (i, (first, last)) in even_split(nodes.len()).into_iter().enumerate() {
                owners[first as usize..=last as usize].fill(i as u16);
            }
        } else {
            for (addr, ranges) in assigned {
                let i = nodes
                    .iter()
                    .position(|n| n.client() == addr.client())
                    .ok_or_else(|| format!("slots are assigned to {}, which is not in the node list", addr.client()))?;
                for &(first, last) in ranges {
                    if first > last || last as usize >= SLOTS {
                        return Err(format!("{first}-{last} is not a slot range"));
                    }
                    for slot in first..=last {
                        if owners[slot as usize] != u16::MAX {
                            return Err(format!("slot {slot} is assigned twice"));
                        }
                        owners[slot as usize] = i as u16;
                    }
                }
            }
            if let Some(slot) = owners.iter().position(|&o| o == u16::MAX) {
                return Err(format!("slot {slot} is assigned to no node"));
            }
        }
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, addr)| Node { id: node_id(&addr), addr, epoch: i as u64 + 1 })
            .collect::<Vec<_>>();
        let epoch = nodes.len() as u64;
        Ok(Topology { nodes, me, epoch, owners: owners.into_boxed_slice(), fenced: false })
    }

    /// A map made elsewhere (a membership source): `nodes`, each slot's
    /// owner by index (`NO_OWNER` for none), seen from `me`. A node not in
    /// the map is listed last, with no slots: it is not a member yet.
    pub(crate) fn from_map(epoch: u64, mut nodes: Vec<Node>, owners: Vec<u16>, me: &NodeAddr) -> Topology {
        debug_assert_eq!(owners.len(), SLOTS);
        let me = match nodes.iter().position(|n| n.addr.client() == me.client()) {
            Some(i) => i,
            None => {
                nodes.push(Node { id: node_id(me), addr: me.clone(), epoch: 0 });
                nodes.len() - 1
            }
        };
        Topology { nodes, me, epoch, owners: owners.into_boxed_slice(), fenced: false }
    }

    /// This map, except that every slot it gives this node and `served`
    /// (what this node served until now) did not stays with its owner in
    /// `served` (if that node is in this map; no owner otherwise): a
    /// slot is taken only once its previous owner has let it go.
    pub(crate) fn hold_back(&self, served: &Topology) -> Topology {
        let mut out = self.clone();
        for slot in 0..SLOTS as u16 {
            if self.owns(slot) && !served.owns(slot) {
                let before = served.owner(slot).and_then(|n| self.nodes.iter().position(|m| m.id == n.id));
                out.owners[slot as usize] = before.map_or(NO_OWNER, |i| i as u16);
            }
        }
        out
    }

    /// Each slot's owner, by index in `nodes` (`NO_OWNER` for none).
    pub(crate) fn owners(&self) -> &[u16] {
        &self.owners
    }

    pub(crate) fn myself(&self) -> &Node {
        &self.nodes[self.me]
    }

    /// The node the map gives `slot` to, if any.
    pub(crate) fn owner(&self, slot: u16) -> Option<&Node> {
        self.nodes.get(self.owners[slot as usize] as usize)
    }

    /// Whether the map gives `slot` to this node, fenced or not.
    pub(crate) fn owns(&self, slot: u16) -> bool {
        self.owners[slot as usize] as usize == self.me
    }

    /// Whether this node serves `slot` now: it owns it and is not fenced.
    pub(crate) fn serves(&self, slot: u16) -> bool {
        !self.fenced && self.owns(slot)
    }

    /// Every maximal run of owned slots with one owner, in slot order,
    /// with the owner's index.
    pub(crate) fn ranges(&self) -> Vec<(Range, usize)> {
        let mut out: Vec<(Range, usize)> = Vec::new();
        for (slot, &owner) in self.owners.iter().enumerate() {
            match out.last_mut() {
                Some(((_, last), o)) if *o == owner as usize && *last as usize + 1 == slot => *last = slot as u16,
                _ if owner == NO_OWNER => {}
                _ => out.push(((slot as u16, slot as u16), owner as usize)),
            }
        }
        out
    }

    /// How many slots node `node` owns.
    pub(crate) fn slot_count(&self, node: usize) -> usize {
        self.owners.iter().filter(|&&o| o as usize == node).count()
    }

    /// Node `node`'s ranges, in slot order.
    pub(crate) fn ranges_of(&self, node: usize) -> Vec<Range> {
        self.ranges().into_iter().filter(|&(_, o)| o == node).map(|(r, _)| r).collect()
    }

    /// The other nodes' indexes.
    pub(crate) fn peers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(move |&i| i != self.me)
    }
}

/// `n` contiguous ranges covering every slot, as redis-cli's cluster
/// manager computes them (a float cursor, rounded).
fn even_split(n: usize) -> Vec<Range> {
    let per_node = SLOTS as f64 / n as f64;
    let (mut first, mut cursor) = (0i64, 0.0f64);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut last = (cursor + per_node - 1.0).round() as i64;
        if last > SLOTS as i64 || i == n - 1 {
            last = SLOTS as i64 - 1;
        }
        last = last.max(first);
        out.push((first as u16, last as u16));
        first = last + 1;
        cursor += per_node;
    }
    out
}

/// A node's id: 40 hex digits of SHA-256 over its client address.
pub(crate) fn node_id(addr: &NodeAddr) -> String {
    let digest = Sha256::digest(format!("herald-node {}", addr.client()));
    digest[..20].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<NodeAddr> {
        (0..n).map(|i| NodeAddr::parse(&format!("127.0.0.1:{}", 7001 + i)).unwrap()).collect()
    }

    /// The split redis-cli makes for three nodes (seen in a real cluster),
    /// and for any count: contiguous, covering, never empty.
    #[test]
    fn slots_split_as_redis_cli_splits_them() {
        assert_eq!(even_split(3), [(0, 5460), (5461, 10922), (10923, 16383)]);
        for n in 1..=200 {
            let split = even_split(n);
            assert_eq!(split.len(), n);
            assert_eq!(split[0].0, 0);
            assert_eq!(split[n - 1].1 as usize, SLOTS - 1);
            for w in split.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "{n} nodes: {split:?}");
                assert!(w[0].0 <= w[0].1);
            }
        }
    }

    #[test]
    fn owners_follow_the_split_and_ids_the_addresses() {
        let nodes = addrs(3);
        let t = Topology::new(nodes.clone(), &nodes[1], &[]).unwrap();
        assert_eq!(t.me, 1);
        assert!(t.serves(5461) && t.serves(10922) && !t.serves(5460) && !t.serves(10923));
        assert_eq!(t.owner(12182).unwrap().addr.client(), "127.0.0.1:7003");
        assert_eq!(t.ranges_of(0), [(0, 5460)]);
        assert_eq!(t.myself().id.len(), 40);
        let again = Topology::new(nodes.clone(), &nodes[0], &[]).unwrap();
        assert_eq!(again.nodes, t.nodes, "every node names the others alike");
        assert_ne!(t.nodes[0].id, t.nodes[1].id);
    }

    /// A node given slots by a new map serves them only once their
    /// previous owner has let them go: until then they stay its; slots
    /// the map takes away go at once.
    #[test]
    fn a_map_holds_back_the_slots_gained() {
        let nodes = addrs(2);
        let before = Topology::new(nodes.clone(), &nodes[1], &[]).unwrap();
        let assign = |a: Vec<Range>, b: Vec<Range>| vec![(nodes[0].clone(), a), (nodes[1].clone(), b)];
        let after =
            Topology::new(nodes.clone(), &nodes[1], &assign(vec![(0, 99), (9000, 16383)], vec![(100, 8999)])).unwrap();
        let held = after.hold_back(&before);
        assert!(!held.owns(100) && held.owner(100).unwrap().addr == nodes[0], "gained: still node 0's");
        assert!(held.owns(8192) && !held.owns(9000), "kept stays, lost goes");
        assert_eq!(held.slot_count(1), 8999 - 8192 + 1);
    }

    #[test]
    fn assigned_ranges_must_cover_every_slot_once() {
        let nodes = addrs(2);
        let assign = |a: Vec<Range>, b: Vec<Range>| vec![(nodes[0].clone(), a), (nodes[1].clone(), b)];
        let t =
            Topology::new(nodes.clone(), &nodes[0], &assign(vec![(0, 99), (200, 16383)], vec![(100, 199)])).unwrap();
        assert_eq!(t.ranges().len(), 3);
        assert_eq!(t.ranges_of(1), [(100, 199)]);
        let twice = Topology::new(nodes.clone(), &nodes[0], &assign(vec![(0, 16383)], vec![(5, 5)]));
        assert_eq!(twice.unwrap_err(), "slot 5 is assigned twice");
        let gap = Topology::new(nodes.clone(), &nodes[0], &assign(vec![(0, 99)], vec![(101, 16383)]));
        assert_eq!(gap.unwrap_err(), "slot 100 is assigned to no node");
    }

    #[test]
    fn addresses_parse_as_cluster_nodes_writes_them() {
        let a = NodeAddr::parse("10.0.0.1:7000").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.bus_port), ("10.0.0.1", 7000, 17000));
        assert_eq!(a.to_string(), "10.0.0.1:7000@17000");
        assert_eq!(NodeAddr::parse("h:1@2").unwrap().bus_port, 2);
        assert_eq!(NodeAddr::parse("[::1]:7000").unwrap().host, "::1");
        for bad in ["h", "h:x", ":1", "h:0", "h:60000"] {
            assert!(NodeAddr::parse(bad).is_err(), "{bad}");
        }
        let me = NodeAddr::parse("127.0.0.1:9").unwrap();
        assert!(Topology::new(addrs(2), &me, &[]).unwrap_err().contains("not in the cluster's node list"));
    }
}
