//! Cluster mode's facts: the nodes, their ids and addresses, and which of
//! Redis Cluster's 16384 hash slots each serves (`Topology`). Plain data:
//! no actor, no socket, no clock. The mesh (`mesh/`) and the commands read
//! it through a `watch` channel, so a source that changes the topology at
//! runtime replaces the whole value and every reader sees one version.
//!
//! What it deliberately does not know: channels, subscribers, links.

mod figures;
mod slot_map;
mod topology;

pub(crate) use figures::{LinkFigures, MeshFigures};
pub(crate) use slot_map::{decode, encode, next_map, Member};
pub(crate) use topology::{Node, NodeAddr, Topology};

use crate::config::Config;

/// The topology `config` describes, or `None` standalone; the error says
/// what is wrong with the settings. With etcd (`cluster-etcd`) it is this
/// node alone, serving no slot until the first map arrives.
pub(crate) fn configured(config: &Config) -> Result<Option<Topology>, String> {
    let c = &config.cluster;
    if !config.cluster_enabled {
        if !c.nodes.is_empty() || !c.etcd.is_empty() {
            return Err("cluster-nodes and cluster-etcd need cluster-enabled yes".into());
        }
        return Ok(None);
    }
    if c.nodes.is_empty() == c.etcd.is_empty() {
        return Err("cluster-enabled yes needs either cluster-nodes (every node's host:port, the same list on each) \
                    or cluster-etcd (etcd's endpoints)"
            .into());
    }
    if config.port == 0 {
        return Err("cluster mode needs a plain TCP port".into());
    }
    if config.foreign.get("tls-cluster").is_some_and(|v| v == "yes") {
        // Refused, not ignored: a bus left in the clear where TLS was asked
        // for would be worse than no start.
        return Err(crate::config::TLS_CLUSTER.into());
    }
    let host = announced_host(config)?;
    if !c.etcd.is_empty() {
        if !c.slots.is_empty() {
            return Err("cluster-slots is for cluster-nodes: with cluster-etcd the slot map lives in etcd".into());
        }
        let bus_port = match c.bus_port {
            0 => config.port.checked_add(10000).ok_or("port + 10000 is no port: set cluster-port")?,
            port => port,
        };
        let me = NodeAddr { host, port: config.port, bus_port };
        return Ok(Some(Topology::from_map(0, Vec::new(), vec![topology::NO_OWNER; SLOTS], &me)));
    }
    let nodes = c.nodes.iter().map(|n| NodeAddr::parse(n)).collect::<Result<Vec<_>, _>>()?;
    let listed = nodes.iter().find(|n| n.host == host && n.port == config.port);
    let me = NodeAddr { host, port: config.port, bus_port: listed.map_or(0, |n| n.bus_port) };
    if let Some(listed) = listed {
        if c.bus_port != 0 && c.bus_port != listed.bus_port {
            return Err(format!("cluster-port {} but the node list says {listed}", c.bus_port));
        }
    }
    let assigned = c
        .slots
        .iter()
        .map(|(node, ranges)| Ok((NodeAddr::parse(node)?, ranges.clone())))
        .collect::<Result<Vec<_>, String>>()?;
    Topology::new(nodes, &me, &assigned).map(Some)
}

/// This node's host as peers and clients reach it: `cluster-announce-ip`,
/// or the first bind address if it names one.
fn announced_host(config: &Config) -> Result<String, String> {
    let c = &config.cluster;
    let host = match &c.announce_ip {
        Some(ip) => ip.clone(),
        None => {
            let first = config.bind.split_whitespace().next().unwrap_or("127.0.0.1").trim_start_matches('-');
            if matches!(first, "*" | "::*" | "0.0.0.0" | "::") {
                return Err(format!("bind {first} names no one address: set cluster-announce-ip"));
            }
            first.to_string()
        }
    };
    Ok(host)
}

/// Redis Cluster's hash slots.
pub(crate) const SLOTS: usize = crate::config::CLUSTER_SLOTS;

/// The slot of a key or shard channel: CRC16 (XMODEM) of the name, or of
/// its first non-empty `{hash tag}`, modulo 16384, as Redis computes it.
pub(crate) fn slot_of(name: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(name)
}

#[cfg(test)]
mod tests {
    use super::slot_of;

    /// What Redis 7.0.15's CLUSTER KEYSLOT answers for each (the hash
    /// tag's edge cases: empty tag, unclosed brace, two tags).
    #[test]
    fn slots_are_redis_keyslot() {
        let redis: [(&[u8], u16); 9] = [
            (b"foo", 12182),
            (b"{}foo", 9500),
            (b"a{}{foo}", 700),
            (b"x{foo", 11351),
            (b"{", 4092),
            (b"", 0),
            (b"}{foo}", 12182),
            (b"{foo}{bar}", 12182),
            (b"user:{123}:x", 5970),
        ];
        for (name, slot) in redis {
            assert_eq!(slot_of(name), slot, "{}", String::from_utf8_lossy(name));
        }
    }
}
