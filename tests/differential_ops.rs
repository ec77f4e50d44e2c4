//! Operator commands and tool-facing behaviour, wire-compared with a
//! redis-server started here (SPEC §1.8–1.10): what Herald answers must be
//! byte for byte what Redis 7.0.15 answers.

mod support;

use support::same_as_redis;

#[test]
fn server_commands_as_a_replica_less_redis() {
    same_as_redis(
        "
        c> ROLE
        c> WAIT 0 0
        c> WAIT 1 20
        c> WAIT x 0
        c> WAIT 1 -1
        c> SWAPDB 0 1
        c> SWAPDB 0 99
        c> SWAPDB a 1
        c> SWAPDB 0 b
        c> DEBUG LOG hello
        c> DEBUG
        ",
    );
}

#[test]
fn functions_and_scripts_as_a_redis_without_any() {
    same_as_redis(
        "
        c> FUNCTION FLUSH
        c> FUNCTION FLUSH ASYNC
        c> FUNCTION FLUSH x
        c> FUNCTION LIST
        c> FUNCTION LIST LIBRARYNAME x* WITHCODE
        c> FUNCTION LIST x
        c> FUNCTION STATS
        c> FUNCTION DUMP
        c> FUNCTION DELETE lib
        c> FUNCTION KILL
        c> FUNCTION HELP
        c> SCRIPT FLUSH
        c> SCRIPT FLUSH SYNC
        c> SCRIPT FLUSH x
        c> SCRIPT EXISTS a b
        c> SCRIPT KILL
        c> SCRIPT HELP
        c> FUNCTION NOPE
        ",
    );
}

#[test]
fn cluster_commands_in_standalone_mode() {
    same_as_redis(
        "
        c> CLUSTER INFO
        c> CLUSTER SLOTS
        c> CLUSTER KEYSLOT foo
        c> CLUSTER INFO extra
        c> CLUSTER NOPE
        c> CLUSTER
        c> READONLY
        c> READWRITE
        c> ASKING
        c> READONLY x
        ",
    );
}

#[test]
fn client_tracking_pause_and_unblock() {
    same_as_redis(
        "
        c> CLIENT GETREDIR
        c> CLIENT TRACKINGINFO
        c> CLIENT TRACKING maybe
        c> CLIENT TRACKING on redirect 999
        c> CLIENT TRACKING on optin optout
        c> CLIENT TRACKING on prefix a
        c> CLIENT TRACKING on bcast prefix a prefix b
        c> CLIENT TRACKINGINFO
        c> CLIENT GETREDIR
        c> CLIENT TRACKING off
        c> CLIENT TRACKING on noloop optout
        c> CLIENT TRACKINGINFO
        c> CLIENT CACHING yes
        c> CLIENT CACHING no
        c> CLIENT TRACKINGINFO
        c> CLIENT CACHING maybe
        c> CLIENT TRACKING off
        c> CLIENT TRACKING on optin
        c> CLIENT CACHING yes
        c> CLIENT TRACKINGINFO
        c> CLIENT TRACKING off
        c> CLIENT TRACKINGINFO
        c> CLIENT PAUSE x
        c> CLIENT PAUSE -1
        c> CLIENT PAUSE 10 foo
        c> CLIENT PAUSE 10 write
        c> CLIENT UNPAUSE
        c> CLIENT UNBLOCK 5
        c> CLIENT UNBLOCK x
        c> CLIENT UNBLOCK 5 foo
        c> CLIENT NO-EVICT on
        c> CLIENT HELP
        ",
    );
}

#[test]
fn slowlog_latency_and_memory_on_a_fresh_server() {
    same_as_redis(
        "
        c> SLOWLOG RESET
        c> SLOWLOG LEN
        c> SLOWLOG GET
        c> SLOWLOG GET x
        c> SLOWLOG GET -2
        c> SLOWLOG HELP
        c> LATENCY LATEST
        c> LATENCY HISTORY command
        c> LATENCY RESET
        c> LATENCY RESET a b
        c> LATENCY DOCTOR
        c> LATENCY GRAPH command
        c> LATENCY LATEST x
        c> LATENCY HELP
        c> MEMORY USAGE k
        c> MEMORY USAGE k SAMPLES 5
        c> MEMORY USAGE
        c> MEMORY DOCTOR
        c> MEMORY PURGE
        c> MEMORY HELP
        ",
    );
}

/// Redis checks a subscribed RESP2 client's command against its whole
/// table: known commands get the subscribed-context error (after arity),
/// unknown subcommands their own error.
#[test]
fn subscribed_context_errors_use_redis_command_table() {
    same_as_redis(
        "
        c> SUBSCRIBE a
        c> GET k
        c> GET
        c> OBJECT ENCODING
        c> OBJECT ENCODING k
        c> OBJECT FOO
        c> CLUSTER INFO
        c> CLIENT FOO
        c> CONFIG GET port
        c> FROBNICATE x
        c> XADD s * f v
        c> 0| CLIENT REPLY OFF
        c> 1| PING
        ",
    );
}

/// CLIENT REPLY OFF/SKIP withhold replies but not pushes (subscribe
/// confirmations), in RESP2 and RESP3, as Redis 7.0.15.
#[test]
fn client_reply_off_keeps_subscribe_confirmations() {
    same_as_redis(
        "
        c> 0| CLIENT REPLY OFF
        c> SUBSCRIBE a
        c> PSUBSCRIBE a*
        c> 0| PING
        c> 0| CLIENT REPLY ON
        p> PUBLISH a hi
        c> read 2
        c> UNSUBSCRIBE a
        c> PUNSUBSCRIBE
        d> HELLO 3
        d> 0| CLIENT REPLY OFF
        d> SUBSCRIBE a
        d> 0| PING
        d> CLIENT REPLY ON
        d> PING
        e> 0| CLIENT REPLY SKIP
        e> SUBSCRIBE b
        e> PING
        ",
    );
}

/// ACL LIST and GETUSER describe command rules as Redis 7.0 recomputes
/// them (one single-command rule per user: Redis orders several by hash).
#[test]
fn acl_getuser_dryrun_and_log_reset() {
    same_as_redis(
        "
        c> ACL SETUSER alice on >pw &news:* +@pubsub
        c> ACL LIST
        c> ACL GETUSER alice
        c> ACL GETUSER default
        c> ACL GETUSER nobody
        c> ACL DRYRUN alice publish news:1 x
        c> ACL DRYRUN alice publish other x
        c> ACL DRYRUN alice subscribe news:1 other
        c> ACL DRYRUN alice get k
        c> ACL DRYRUN bob get k
        c> ACL DRYRUN alice nocmd
        c> ACL DRYRUN alice publish x
        c> ACL LOG RESET
        c> ACL LOG
        c> ACL LOG x
        c> ACL HELP
        c> ACL SETUSER u1 +publish +@pubsub
        c> ACL SETUSER u3 +@all -publish +ping
        c> ACL SETUSER u4 +client|list +client -client|kill
        c> ACL SETUSER u5 +@pubsub -@pubsub +ping
        c> ACL LIST
        c> ACL GETUSER u4
        ",
    );
}
