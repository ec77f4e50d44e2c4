//! The slot map a membership source keeps (issue 17: etcd): its text form
//! and how the coordinator derives the next map from the members. Plain
//! data, like `Topology`, which is what a map becomes on each node.
//!
//! The text is meant to be read with `etcdctl get`:
//!
//! ```text
//! herald-slot-map epoch 12
//! <node id> <host:port@bus> <node epoch> 0-5461 10923-16383
//! ```

use super::topology::{node_id, Node, NodeAddr, Topology, NO_OWNER};
use super::SLOTS;

const HEADER: &str = "herald-slot-map epoch ";

/// The map's text: the epoch, then one line per node with its ranges.
pub(crate) fn encode(t: &Topology) -> String {
    let mut out = format!("{HEADER}{}\n", t.epoch);
    for (i, node) in t.nodes.iter().enumerate().filter(|(_, n)| in_map(n)) {
        out.push_str(&format!("{} {} {}", node.id, node.addr, node.epoch));
        for (a, b) in t.ranges_of(i) {
            out.push_str(&format!(" {a}-{b}"));
        }
        out.push('\n');
    }
    out
}

/// A map's text seen from `me` (who need not be in it).
pub(crate) fn decode(text: &str, me: &NodeAddr) -> Result<Topology, String> {
    let mut lines = text.lines();
    let epoch = lines
        .next()
        .and_then(|l| l.strip_prefix(HEADER))
        .and_then(|e| e.parse().ok())
        .ok_or("a slot map starts with 'herald-slot-map epoch N'")?;
    let mut owners = vec![NO_OWNER; SLOTS];
    let mut nodes = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [id, addr, node_epoch, ranges @ ..] = &words[..] else { return Err(format!("bad slot map line '{line}'")) };
        let node_epoch = node_epoch.parse().map_err(|_| format!("bad node epoch in '{line}'"))?;
        let index = nodes.len() as u16;
        nodes.push(Node { id: id.to_string(), addr: NodeAddr::parse(addr)?, epoch: node_epoch });
        for range in ranges {
            let (a, b) = range.split_once('-').ok_or_else(|| format!("bad range '{range}'"))?;
            let (a, b): (u16, u16) = (a.parse().map_err(|_| "bad range")?, b.parse().map_err(|_| "bad range")?);
            if a > b || b as usize >= SLOTS {
                return Err(format!("{a}-{b} is not a slot range"));
            }
            for slot in a..=b {
                if owners[slot as usize] != NO_OWNER {
                    return Err(format!("slot {slot} is in the map twice"));
                }
                owners[slot as usize] = index;
            }
        }
    }
    if nodes.len() >= NO_OWNER as usize {
        return Err("too many nodes in the slot map".into());
    }
    Ok(Topology::from_map(epoch, nodes, owners, me))
}

/// A registered node as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub addr: NodeAddr,
    /// It asked to hand its slots over (it is shutting down).
    pub leaving: bool,
}

/// The map that should follow `previous` for `members`, or `None` if it
/// is already right. Every member is a node of the map (a leaving one
/// keeps its links until it is gone); only members not leaving own slots,
/// a fair share each (counts differ by one at most), and as few slots as
/// possible change owner. With no member left to own them, slots keep
/// their owners.
pub(crate) fn next_map(previous: Option<&Topology>, members: &[Member]) -> Option<Topology> {
    let mut members: Vec<(String, &Member)> = members.iter().map(|m| (node_id(&m.addr), m)).collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    members.dedup_by(|a, b| a.0 == b.0);
    let index_of = |id: &str| members.iter().position(|(m, _)| m == id);
    // Each slot's current owner among the members that may own slots.
    let current: Vec<Option<usize>> = (0..SLOTS as u16)
        .map(|slot| {
            let owner = previous?.owner(slot)?;
            index_of(&owner.id).filter(|&i| !members[i].1.leaving)
        })
        .collect();
    let eligible: Vec<usize> = (0..members.len()).filter(|&i| !members[i].1.leaving).collect();
    let owners: Vec<u16> = if eligible.is_empty() {
        // Nobody to hand to: keep what the previous map says, by index.
        (0..SLOTS as u16)
            .map(|slot| {
                previous.and_then(|p| p.owner(slot)).and_then(|o| index_of(&o.id)).map_or(NO_OWNER, |i| i as u16)
            })
            .collect()
    } else {
        rebalance(&current, &eligible).into_iter().map(|i| i as u16).collect()
    };
    let epoch = previous.map_or(0, |p| p.epoch) + 1;
    let nodes: Vec<Node> = members
        .iter()
        .enumerate()
        .map(|(i, (id, m))| {
            let before = previous.and_then(|p| p.nodes.iter().find(|n| &n.id == id));
            let gains = owners.iter().enumerate().any(|(slot, &o)| o as usize == i && current[slot] != Some(i));
            let node_epoch = match before {
                Some(n) if !gains && n.epoch > 0 => n.epoch,
                _ => epoch,
            };
            Node { id: id.clone(), addr: m.addr.clone(), epoch: node_epoch }
        })
        .collect();
    // Seen from its first node: the coordinator only writes it out.
    let me = nodes.first()?.addr.clone();
    let next = Topology::from_map(epoch, nodes, owners, &me);
    fn listed(t: &Topology) -> Vec<(&String, &NodeAddr)> {
        t.nodes.iter().filter(|n| in_map(n)).map(|n| (&n.id, &n.addr)).collect()
    }
    let unchanged = previous.is_some_and(|p| listed(p) == listed(&next) && p.owners() == next.owners());
    (!unchanged).then_some(next)
}

/// Whether `node` comes from the map: every node of a map has an epoch;
/// a node looking at a map it is not in lists itself with none.
fn in_map(node: &Node) -> bool {
    node.epoch > 0
}

/// Each slot's owner among `eligible` (indexes), given `current` owners
/// (`None`: no eligible owner). Targets are a fair share, the one extra
/// slot of a remainder going to the members that hold the most already
/// (ties: lower index); each member keeps its lowest slots up to its
/// target, and the rest are handed out in slot order to the members
/// below target, in index order. So the moves are the orphans plus each
/// member's excess over its target, which is the fewest possible.
pub(crate) fn rebalance(current: &[Option<usize>], eligible: &[usize]) -> Vec<usize> {
    let n = eligible.len();
    assert!(n > 0, "rebalance needs a member");
    let size = eligible.iter().max().map_or(0, |&m| m + 1);
    let mut held = vec![0usize; size];
    for owner in current.iter().flatten() {
        held[*owner] += 1;
    }
    let mut by_holding = eligible.to_vec();
    by_holding.sort_by_key(|&m| (std::cmp::Reverse(held[m]), m));
    let (base, extra) = (current.len() / n, current.len() % n);
    let mut target = vec![0usize; size];
    for (rank, &m) in by_holding.iter().enumerate() {
        target[m] = base + usize::from(rank < extra);
    }
    let mut kept = vec![0usize; size];
    let mut owners: Vec<Option<usize>> = current
        .iter()
        .map(|&owner| {
            let o = owner.filter(|&o| eligible.contains(&o) && kept[o] < target[o])?;
            kept[o] += 1;
            Some(o)
        })
        .collect();
    let mut takers = eligible.iter().flat_map(|&m| std::iter::repeat_n(m, target[m] - kept[m]));
    for slot in owners.iter_mut().filter(|o| o.is_none()) {
        *slot = Some(takers.next().expect("the targets add up to every slot"));
    }
    owners.into_iter().map(|o| o.expect("every slot handed out")).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn member(port: u16, leaving: bool) -> Member {
        Member { addr: NodeAddr::parse(&format!("127.0.0.1:{port}")).unwrap(), leaving }
    }

    /// The fewest moves any fair assignment needs: every orphan, plus
    /// each member's excess over its share, over every choice of which
    /// members get the remainder's extra slot (brute force).
    fn fewest_moves(current: &[Option<usize>], n: usize) -> usize {
        let (base, extra) = (current.len() / n, current.len() % n);
        let held: Vec<usize> = (0..n).map(|m| current.iter().filter(|&&o| o == Some(m)).count()).collect();
        let orphans = current.iter().filter(|o| o.is_none()).count();
        (0u32..1 << n)
            .filter(|mask| mask.count_ones() as usize == extra)
            .map(|mask| (0..n).map(|m| held[m].saturating_sub(base + (mask >> m & 1) as usize)).sum::<usize>())
            .min()
            .unwrap()
            + orphans
    }

    proptest! {
        /// Every slot gets an eligible owner, shares differ by one at
        /// most, and no more slots move than the fewest possible.
        #[test]
        fn rebalancing_is_fair_and_moves_the_fewest_slots(
            n in 1usize..7,
            runs in proptest::collection::vec((0usize..9, 1usize..5000), 1..12),
        ) {
            // Runs of slots with one owner; owners >= n are gone members.
            let mut current: Vec<Option<usize>> = Vec::new();
            for (owner, len) in runs.iter().cycle() {
                if current.len() >= SLOTS { break }
                let take = (*len).min(SLOTS - current.len());
                current.extend(std::iter::repeat_n((*owner < n).then_some(*owner), take));
            }
            let eligible: Vec<usize> = (0..n).collect();
            let owners = rebalance(&current, &eligible);
            let counts: Vec<usize> = (0..n).map(|m| owners.iter().filter(|&&o| o == m).count()).collect();
            prop_assert!(owners.iter().all(|&o| o < n));
            prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{counts:?}");
            let moved = owners.iter().zip(&current).filter(|(o, c)| **c != Some(**o)).count();
            prop_assert_eq!(moved, fewest_moves(&current, n));
        }
    }

    #[test]
    fn a_map_reads_back_as_written() {
        let members = [member(7000, false), member(7001, false), member(7002, false)];
        let t = next_map(None, &members).unwrap();
        let me = members[1].addr.clone();
        let read = decode(&encode(&t), &me).unwrap();
        assert_eq!(read.owners(), t.owners());
        assert_eq!(read.nodes, t.nodes);
        assert_eq!(read.epoch, 1);
        assert_eq!(read.myself().addr, me);
        for bad in ["", "herald-slot-map epoch x", "herald-slot-map epoch 1\nid 127.0.0.1:1 1 5-4"] {
            assert!(decode(bad, &me).is_err(), "{bad}");
        }
        let twice = format!("{}x 127.0.0.1:9 1 0-0\n", encode(&t));
        assert_eq!(decode(&twice, &me).unwrap_err(), "slot 0 is in the map twice");
    }

    /// A joining node takes a fair share from the others and nothing
    /// else moves; a dead node's slots are spread; a leaving node keeps
    /// its place in the map with no slots; an unchanged membership gives
    /// no new map.
    #[test]
    fn joins_deaths_and_leaves_move_only_what_they_must() {
        let (a, b, c, d) = (member(7000, false), member(7001, false), member(7002, false), member(7003, false));
        let three = next_map(None, &[a.clone(), b.clone(), c.clone()]).unwrap();
        assert!(next_map(Some(&three), &[c.clone(), a.clone(), b.clone()]).is_none(), "same members, same map");
        let four = next_map(Some(&three), &[a.clone(), b.clone(), c.clone(), d.clone()]).unwrap();
        assert_eq!(four.epoch, 2);
        let moved = |x: &Topology, y: &Topology| {
            (0..SLOTS as u16).filter(|&s| x.owner(s).map(|n| &n.id) != y.owner(s).map(|n| &n.id)).count()
        };
        assert_eq!(moved(&three, &four), SLOTS / 4, "the newcomer's share and nothing more");
        let dead_c = next_map(Some(&four), &[a.clone(), b.clone(), d.clone()]).unwrap();
        assert_eq!(moved(&four, &dead_c), SLOTS / 4, "only the dead node's share");
        assert!((0..dead_c.nodes.len()).all(|i| dead_c.nodes[i].addr != c.addr));
        let leaving = Member { leaving: true, ..a.clone() };
        let handed = next_map(Some(&dead_c), &[leaving, b.clone(), d.clone()]).unwrap();
        let a_index = handed.nodes.iter().position(|n| n.addr == a.addr).unwrap();
        assert_eq!(handed.slot_count(a_index), 0);
        assert_eq!(handed.nodes.len(), 3, "the leaving node stays a node of the map");
    }
}
