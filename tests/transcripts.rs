//! Wire transcripts of Herald alone, kept as insta snapshots so any change
//! in what goes over the wire shows up in review. Covers what the
//! differential tests cannot (CLIENT LIST, INFO, COMMAND, CONFIG, SETINFO).

mod support;

use support::{herald, normalize, run_script};

/// Masks the connection-specific parts of CLIENT INFO/LIST lines (and
/// queued output, which depends on how far the writer got).
fn mask_client_lines(t: &str) -> String {
    t.split(' ')
        .map(|w| {
            for key in ["addr=", "laddr=", "age=", "idle=", "omem=", "tot-mem="] {
                if w.starts_with(key) {
                    return format!("{key}<>");
                }
            }
            w.to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn resp2_session() {
    let h = herald();
    let t = run_script(
        h.port,
        "
        c> HELLO 2 SETNAME app
        c> CLIENT SETINFO lib-name herald-test
        c> CLIENT SETINFO LIB-VER 1.0
        c> CLIENT SETINFO color red
        c> CLIENT INFO
        c> CLIENT ID
        c> CONFIG GET client-output-buffer-limit
        c> CONFIG SET client-output-buffer-limit \"pubsub 1mb 512kb 10\"
        c> CONFIG GET client-output-buffer-limit
        c> CONFIG SET client-output-buffer-limit \"pubsub 1\"
        c> CONFIG SET port 1
        c> COMMAND INFO publish nosuch
        c> COMMAND DOCS subscribe
        c> KEYS *
        c> SCAN 0
        c> EXISTS a b
        ",
    );
    insta::assert_snapshot!(mask_client_lines(&normalize(&t)));
}

#[test]
fn resp3_session() {
    let h = herald();
    let t = run_script(
        h.port,
        "
        c> HELLO 3
        c> SUBSCRIBE a
        c> SSUBSCRIBE s
        c> PSUBSCRIBE a*
        c> 3| PUBLISH a mine
        c> 2| SPUBLISH s shard
        c> CLIENT INFO
        c> COMMAND INFO client|id
        c> CONFIG GET databases
        c> RESET
        c> PING
        ",
    );
    insta::assert_snapshot!(mask_client_lines(&normalize(&t)));
}

#[test]
fn client_list_and_kill() {
    let h = herald();
    let t = run_script(
        h.port,
        "
        a> CLIENT SETNAME watcher
        a> SUBSCRIBE x
        b> CLIENT SETNAME killer
        b> CLIENT LIST TYPE pubsub
        b> CLIENT LIST TYPE nonsense
        b> CLIENT KILL TYPE pubsub
        a> eof
        b> CLIENT KILL TYPE pubsub
        b> PUBSUB NUMSUB x
        ",
    );
    // a's session queues its unsubscribe before its socket closes, and b
    // asks after seeing that close, so NUMSUB must read 0.
    insta::assert_snapshot!(mask_client_lines(&normalize(&t)));
}

/// What COMMAND DOCS says of every pub/sub command (summary, since,
/// arguments): clients and redis-cli's hints read it.
#[test]
fn pubsub_command_docs() {
    let h = herald();
    let t = run_script(
        h.port,
        "
        c> COMMAND DOCS publish spublish subscribe unsubscribe psubscribe punsubscribe ssubscribe sunsubscribe
        c> COMMAND DOCS pubsub pubsub|channels pubsub|numsub pubsub|numpat pubsub|shardchannels pubsub|shardnumsub pubsub|help
        c> COMMAND INFO pubsub|channels pubsub|numsub pubsub|numpat pubsub|shardchannels pubsub|shardnumsub
        ",
    );
    insta::assert_snapshot!(normalize(&t));
}
