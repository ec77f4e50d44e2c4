//! Cluster mode against a real Redis 7.0.15 cluster: the same scripts on
//! a 3-node Herald cluster and a 3-node Redis cluster (slots split alike),
//! with what must differ masked (ports, node ids, client ids). What
//! cluster clients parse — CLUSTER replies, MOVED and CROSSSLOT, the
//! order of Redis' checks — must be byte-identical.

mod support;

use support::cluster::{redis_cluster, Cluster};
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
