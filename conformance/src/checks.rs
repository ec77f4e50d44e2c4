//! The clause table: every clause of SPEC.md, in its order, with the check
//! that judges it over the wire or the reason none can.

use crate::{cluster, delivery, limits, security, wire, Outcome, Target};

/// How a clause is judged.
pub enum Check {
    /// By talking to the server.
    Wire(fn(&Target) -> Outcome),
    /// Not over the wire; the reason, and where it is checked instead.
    Elsewhere(&'static str),
}

pub struct Clause {
    /// SPEC.md's number, e.g. "2.2".
    pub id: &'static str,
    pub title: &'static str,
    pub check: Check,
}

const fn wire(id: &'static str, title: &'static str, check: fn(&Target) -> Outcome) -> Clause {
    Clause { id, title, check: Check::Wire(check) }
}

const fn elsewhere(id: &'static str, title: &'static str, why: &'static str) -> Clause {
    Clause { id, title, check: Check::Elsewhere(why) }
}

const SIMULATOR: &str = "a property of Herald's simulator, checked by sim/tests";
const CLIENT: &str = "a property of herald-client, checked by its own tests";

static CLAUSES: &[Clause] = &[
    wire("1.1", "Replies are Redis' bytes", wire::replies_are_redis_bytes),
    wire("1.2", "Requests are parsed by Redis' rules", wire::requests_are_parsed_by_redis_rules),
    wire("1.3", "Subscribed context", wire::subscribed_context),
    wire("1.4", "Glob patterns", wire::glob_patterns),
    wire("1.5", "Counts", wire::counts),
    wire("1.6", "MULTI/EXEC", wire::multi_exec),
    wire("1.7", "Idle timeout", limits::idle_timeout),
    wire("1.8", "maxclients", limits::maxclients),
    wire("1.9", "CLIENT REPLY", wire::client_reply),
    wire("1.10", "Operator commands", wire::operator_commands),
    wire("1.11", "INFO", wire::info_sections),
    wire("1.12", "Configuration users already have", wire::configuration),
    elsewhere("1.13", "Redis' own tests", "a test suite, run by Herald's tests/redis_tcl.rs"),
    wire("2.1", "At most once per subscription", delivery::at_most_once),
    wire("2.2", "Per-publisher order", delivery::per_publisher_order),
    wire("2.3", "Subscription boundaries", delivery::subscription_boundaries),
    wire("2.4", "Disconnect cleanup", delivery::disconnect_cleanup),
    wire("2.5", "Channels are global across databases", delivery::channels_across_databases),
    wire("3.1", "Slow subscribers are dropped at their output limit", limits::slow_subscriber_dropped),
    wire("3.2", "Publishers and other subscribers are not slowed", limits::others_not_slowed),
    elsewhere("4.1", "Same seed, same run", SIMULATOR),
    elsewhere("4.2", "The simulator runs the production topology", SIMULATOR),
    wire("5.1", "CLIENT SETINFO is accepted", wire::client_setinfo_accepted),
    elsewhere("5.2", "Order of one connection's pmessages", "unspecified on both servers"),
    wire("5.3", "Keyspace commands are unknown", wire::keyspace_commands_are_unknown),
    wire("5.4", "Scripts are unknown", wire::scripts_are_unknown),
    elsewhere("5.5", "Diagnostic reports", "free text, not judged"),
    elsewhere("5.6", "The config file", "the server's files, not the wire"),
    elsewhere("5.7", "ACL LIST order", "random per process on Redis"),
    elsewhere("5.8", "TLS settings fixed at start", "needs TLS certificates to change"),
    wire("5.9", "Non-UTF-8 in error texts", wire::non_utf8_in_error_texts),
    wire("5.10", "A half-closed client gets its replies", wire::half_closed_client_gets_its_replies),
    elsewhere("6.1", "Never twice, in order", CLIENT),
    elsewhere("6.2", "Gaps are signalled", CLIENT),
    elsewhere("6.3", "Subscribe is a boundary", CLIENT),
    elsewhere("6.4", "Commands are not retried", CLIENT),
    elsewhere("6.5", "One suite for both servers", CLIENT),
    elsewhere("6.6", "Cluster mode", CLIENT),
    wire("7.1", "Garbage is refused, others are served", limits::garbage_is_refused_others_served),
    wire("7.2", "Limits, with Redis' words", limits::protocol_limits),
    wire("7.3", "Memory stays bounded under floods", limits::flood_is_bounded),
    wire("7.4", "No leaks", delivery::reset_clients_leave_nothing),
    elsewhere("7.5", "Graceful shutdown", "would stop the server under test"),
    wire("8.1", "Authentication", security::authentication),
    wire("8.2", "Command and channel permissions", security::channel_permissions),
    elsewhere("8.3", "Protected mode", "needs a client off the loopback interface"),
    wire("8.4", "TLS", security::tls),
    wire("9.1", "Redis Cluster's face", cluster::cluster_face),
    wire("9.2", "Shard channels at their slot's node", cluster::shard_channels_at_their_node),
    wire("9.3", "Classic pub/sub across nodes", cluster::classic_across_nodes),
    elsewhere("9.4", "One hop, by interest", "what crosses between nodes is not seen by clients"),
    wire("9.5", "The subscription boundary across nodes", cluster::boundary_across_nodes),
    elsewhere("9.6", "A dead or slow peer", "would stop a node of the cluster under test"),
];

/// Every clause of SPEC.md, in its order.
pub fn clauses() -> &'static [Clause] {
    CLAUSES
}
