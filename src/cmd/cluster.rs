//! CLUSTER, READONLY, READWRITE, ASKING in standalone mode: Redis' refusal,
//! after Redis' own subcommand and arity checks (from its command table),
//! so cluster-aware clients learn that this is not a cluster.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::redis as redis_table;
use crate::session::{Flow, Session};

const DISABLED: &str = "ERR This instance has cluster support disabled";

pub(crate) fn specs() -> [Spec; 4] {
    let connection = |name, summary| Spec { since: "3.0.0", summary, ..Spec::new(name, 1, "cluster", disabled) };
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

fn disabled(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.error(DISABLED);
    Flow::Done
}

/// Redis 7.0.15's CLUSTER subcommands, each refused: made once from its
/// command table, so arity and unknown-subcommand errors are Redis'.
fn subcommands() -> &'static [Spec] {
    static SUBS: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    SUBS.get_or_init(|| {
        redis_table::subcommands_of("cluster")
            .map(|(name, c)| Spec { since: "3.0.0", ..Spec::new(name, c.arity, "cluster", disabled) })
            .collect()
    })
}
