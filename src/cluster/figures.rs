//! What operators see of the links between nodes (CLUSTER INFO, NODES and
//! LINKS, INFO, metrics). Figures, not state: the mesh's actors and link
//! tasks own the links and only report here.
//!
//! What it deliberately does not know: what travels on a link, or why a
//! link went down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::Topology;

#[derive(Debug, Default)]
pub(crate) struct MeshFigures {
    /// This node's links to its peers that are up, by peer id.
    to: Mutex<HashMap<String, LinkFigures>>,
    /// Peers' links to this node that have said HELLO: (serial, peer id,
    /// figures), in the order they came.
    from: Mutex<Vec<(u64, String, LinkFigures)>>,
    from_serial: AtomicU64,
    /// Bus messages (a PUB, an announcement, a HELLO, a PING) written to
    /// peer links and read from them: equal, summed over the nodes, once
    /// nothing is in flight (Redis' CLUSTER INFO counts the same way).
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Publishes passed to a peer, and those dropped because its link was
    /// down or over `cluster-link-sendbuf-limit`.
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    /// Links closed for passing `cluster-link-sendbuf-limit`.
    pub limit_exceeded: AtomicU64,
    /// Channels and patterns this node announces to its peers, and (peer,
    /// name) pairs its peers have announced to it.
    pub announced: AtomicUsize,
    pub wanted_by_peers: AtomicUsize,
    /// The topology in force: its epoch and this node's slots.
    pub epoch: AtomicU64,
    pub slots_owned: AtomicUsize,
    /// With a membership source (etcd): the members registered, and the
    /// slot maps this node has put in force.
    pub members: AtomicUsize,
    pub maps_applied: AtomicU64,
}

/// One link as CLUSTER LINKS shows it.
#[derive(Debug, Clone)]
pub(crate) struct LinkFigures {
    /// When the connection was made, in Unix milliseconds.
    pub created_ms: u64,
    /// Bytes handed to the link and not yet written to its socket.
    pub queued: Arc<AtomicUsize>,
}

impl LinkFigures {
    pub(crate) fn new(queued: Arc<AtomicUsize>) -> LinkFigures {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        LinkFigures { created_ms: now.map_or(0, |d| d.as_millis() as u64), queued }
    }
}

/// A peer's link to this node, listed until dropped.
pub(crate) struct InboundLink {
    figures: Arc<MeshFigures>,
    serial: u64,
}

impl Drop for InboundLink {
    fn drop(&mut self) {
        self.figures.from.lock().expect("never poisoned").retain(|(s, ..)| *s != self.serial);
    }
}

impl MeshFigures {
    pub(crate) fn is_up(&self, node: &str) -> bool {
        self.to.lock().expect("never poisoned").contains_key(node)
    }

    pub(crate) fn links_up(&self) -> usize {
        self.to.lock().expect("never poisoned").len()
    }

    /// Records `t` as the topology in force.
    pub(crate) fn topology(&self, t: &Topology) {
        self.epoch.store(t.epoch, Ordering::Relaxed);
        self.slots_owned.store(if t.fenced { 0 } else { t.slot_count(t.me) }, Ordering::Relaxed);
    }

    /// Records this node's link to `node` as up (with its figures) or down.
    pub(crate) fn set_up(&self, node: &str, link: Option<LinkFigures>) {
        let mut to = self.to.lock().expect("never poisoned");
        match link {
            Some(link) => to.insert(node.to_string(), link),
            None => to.remove(node),
        };
    }

    /// Lists `node`'s link to this node until the guard is dropped.
    pub(crate) fn inbound(self: &Arc<Self>, node: &str) -> InboundLink {
        let serial = self.from_serial.fetch_add(1, Ordering::Relaxed);
        let link = LinkFigures::new(Arc::new(AtomicUsize::new(0)));
        self.from.lock().expect("never poisoned").push((serial, node.to_string(), link));
        InboundLink { figures: self.clone(), serial }
    }

    /// This node's link to `node`, if up.
    pub(crate) fn link_to(&self, node: &str) -> Option<LinkFigures> {
        self.to.lock().expect("never poisoned").get(node).cloned()
    }

    /// `node`'s links to this node (usually one; two while it reconnects).
    pub(crate) fn links_from(&self, node: &str) -> Vec<LinkFigures> {
        let from = self.from.lock().expect("never poisoned");
        from.iter().filter(|(_, id, _)| id == node).map(|(.., link)| link.clone()).collect()
    }
}
