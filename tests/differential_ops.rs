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

/// COMMAND INFO and COMMAND DOCS of every command and subcommand Herald
/// has that Redis 7.0.15 has too are Redis' own, byte for byte, in both
/// protocols: key positions and key specs (cluster clients route SPUBLISH
/// by them), tips, complexity, arguments. A container is compared by its
/// subcommands one by one (Redis lists them in its hash table's order,
/// which each process draws at start).
#[test]
fn command_info_and_docs_are_redis_own() {
    let (h, r) = (support::herald(), support::redis());
    let (mut ours, mut theirs) = (support::Conn::open(h.port), support::Conn::open(r.port));
    let text = String::from_utf8_lossy(&ours.cmd(&["COMMAND", "LIST"])).into_owned();
    let names: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$'])).collect();
    let mut compared = 0;
    for protocol in ["2", "3"] {
        ours.cmd(&["HELLO", protocol]);
        theirs.cmd(&["HELLO", protocol]);
        for name in &names {
            let subs = String::from_utf8_lossy(&theirs.cmd(&["COMMAND", "INFO", name])).into_owned();
            let mut full: Vec<String> =
                subs.split("\r\n").filter(|l| l.starts_with(&format!("{name}|"))).map(String::from).collect();
            if full.is_empty() {
                full.push(name.to_string());
            }
            for one in &full {
                // Herald's own subcommands (CLIENT SETINFO, from Redis 7.2)
                // are not in Redis 7.0.15.
                let (a, b) = (ours.cmd(&["COMMAND", "INFO", one]), theirs.cmd(&["COMMAND", "INFO", one]));
                if one.contains('|') && !String::from_utf8_lossy(&a).contains(one.as_str()) {
                    continue;
                }
                assert_eq!(
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b),
                    "COMMAND INFO {one}, RESP{protocol}"
                );
                let (a, b) = (ours.cmd(&["COMMAND", "DOCS", one]), theirs.cmd(&["COMMAND", "DOCS", one]));
                assert_eq!(
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b),
                    "COMMAND DOCS {one}, RESP{protocol}"
                );
                compared += 1;
            }
        }
    }
    eprintln!("{compared} entries compared");
    assert!(compared > 200, "only {compared} entries compared");
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS read keys by Redis' key specs, with
/// Redis' errors in Redis' order (a shard channel is not a key).
#[test]
fn command_getkeys_as_redis() {
    same_as_redis(
        "
        c> COMMAND GETKEYS exists a b
        c> COMMAND GETKEYSANDFLAGS exists a b
        c> COMMAND GETKEYS memory usage k
        c> COMMAND GETKEYS MEMORY USAGE k SAMPLES 5
        c> COMMAND GETKEYS memory usage
        c> COMMAND GETKEYS spublish ch m
        c> COMMAND GETKEYSANDFLAGS spublish ch m
        c> COMMAND GETKEYS publish ch m
        c> COMMAND GETKEYS pubsub numsub a
        c> COMMAND GETKEYS pubsub nope
        c> COMMAND GETKEYS nope x
        c> COMMAND GETKEYS exists
        c> COMMAND GETKEYS watch a
        c> COMMAND GETKEYS
        c> COMMAND GETKEYS keys *
        c> COMMAND NOPE
        c> COMMAND HELP
        ",
    );
}

/// A refused EXEC discards the transaction and says why as EXECABORT, in
/// MULTI or not, as Redis' rejectCommand does.
#[test]
fn a_refused_exec_aborts_as_redis() {
    same_as_redis(
        "
        c> EXEC x
        c> MULTI
        c> PING
        c> EXEC x
        c> EXEC
        s> SUBSCRIBE a
        s> EXEC
        ",
    );
}

/// HELLO takes its options in order, each at once (Redis 7.0): a name set
/// before a wrong password or a bad option stays, what follows a failure
/// is not looked at, a bad name fails where it is read.
#[test]
fn hello_takes_its_options_in_order() {
    same_as_redis(
        "
        c> ACL SETUSER hu on >p +@all
        c> HELLO 2 SETNAME zz AUTH hu wrong
        c> CLIENT GETNAME
        c> HELLO 2 AUTH hu wrong SETNAME yy
        c> CLIENT GETNAME
        c> HELLO 2 SETNAME ww bogus
        c> CLIENT GETNAME
        c> HELLO 3 SETNAME \"a b\" bogus
        c> HELLO 2 AUTH hu p SETNAME vv
        c> ACL WHOAMI
        c> CLIENT GETNAME
        c> HELLO 2 SETNAME x\\x00y
        ",
    );
}

/// ACL SETUSER's rules checked and kept as Redis 7.0.15 does: key patterns
/// with permissions (`%R~k`), patterns after `allkeys` or `allchannels`
/// refused, a password removed that the user does not have refused, an
/// empty rule ignored, spaces in a pattern refused.
#[test]
fn acl_setuser_rules_as_redis() {
    same_as_redis(
        "
        c> ACL SETUSER fz \"\"
        c> ACL SETUSER fz <pw
        c> ACL SETUSER fz !0000000000000000000000000000000000000000000000000000000000000000
        c> ACL SETUSER fz >pw <pw
        c> ACL SETUSER fz %R~k %r~j %RW~l %WR~m %W~n
        c> ACL LIST
        c> ACL SETUSER fz %X~k
        c> ACL SETUSER fz %~k
        c> ACL SETUSER fz %R %R~
        c> ACL SETUSER fz resetkeys %R~k ~k %W~j %R~j
        c> ACL GETUSER fz
        c> ACL SETUSER fz allkeys ~a
        c> ACL SETUSER fz ~* %R~a
        c> ACL SETUSER fz resetkeys %R~* ~a
        c> ACL LIST
        c> ACL SETUSER fz allchannels &a
        c> ACL SETUSER fz resetchannels &* &a
        c> ACL SETUSER fz resetchannels &a &b
        c> ACL SETUSER fz \"~a b\"
        c> ACL SETUSER fz \"&a b\"
        c> ACL LIST
        ",
    );
}

/// CLIENT KILL USER closes that user's connections (and only theirs); an
/// unknown user or client type is refused with Redis' words.
#[test]
fn client_kill_by_user_as_redis() {
    same_as_redis(
        "
        c> ACL SETUSER alice on >pw +@all allchannels
        a> AUTH alice pw
        b> PING
        c> CLIENT KILL USER nosuch
        c> CLIENT KILL TYPE nosuch
        c> CLIENT KILL USER alice
        a> eof
        b> PING
        c> CLIENT KILL USER default SKIPME yes
        b> eof
        c> PING
        ",
    );
}

/// A change to the default user reaches connections logged in as
/// someone else: RESET makes them the default user as it is now.
#[test]
fn reset_takes_the_default_user_as_changed_since() {
    same_as_redis(
        "
        c> ACL SETUSER alice on >pw +@all allchannels
        a> AUTH alice pw
        c> ACL SETUSER default resetchannels
        a> RESET
        a> SUBSCRIBE news
        a> PING
        ",
    );
}

/// A user change keeps a subscriber whose channels and patterns it still
/// allows: a channel is matched against the user's channel patterns, a
/// pattern must be one of them as written.
#[test]
fn a_user_change_keeps_subscriptions_it_still_allows() {
    same_as_redis(
        "
        c> ACL SETUSER bob on >pw +@all resetchannels &news.*
        a> AUTH bob pw
        a> SUBSCRIBE news.x
        a> PSUBSCRIBE news.*
        c> ACL SETUSER bob +ping
        c> PUBLISH news.x hi
        a> read 2
        c> ACL SETUSER bob resetchannels &news.x
        a> eof
        ",
    );
}

/// `reset`, `sanitize-payload` and `skip-sanitize-payload` as Redis keeps
/// and shows them.
#[test]
fn acl_reset_and_payload_flags_as_redis() {
    same_as_redis(
        "
        c> ACL SETUSER z reset
        c> ACL LIST
        c> ACL SETUSER z on nopass skip-sanitize-payload
        c> ACL GETUSER z
        c> ACL SETUSER z SANITIZE-PAYLOAD
        c> ACL LIST
        ",
    );
}

/// A user who may PUBLISH but not SPUBLISH (or the reverse) is refused the
/// other even when it comes pipelined behind ones it may send, where
/// Herald sends a run of publishes off at once.
#[test]
fn pipelined_publishes_are_checked_per_command() {
    same_as_redis(
        r#"
        a> ACL SETUSER pub on >pw +@all -spublish allchannels
        a> ACL SETUSER spub on >pw +@all -publish allchannels
        u> AUTH pub pw
        u> raw 4| *3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\nx\r\n*3\r\n$8\r\nSPUBLISH\r\n$1\r\na\r\n$1\r\nx\r\n*3\r\n$8\r\nSPUBLISH\r\n$1\r\nb\r\n$1\r\nx\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nb\r\n$1\r\nx\r\n
        v> AUTH spub pw
        v> raw 4| *3\r\n$8\r\nSPUBLISH\r\n$1\r\na\r\n$1\r\nx\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$1\r\nx\r\n*3\r\n$7\r\nPUBLISH\r\n$1\r\nb\r\n$1\r\nx\r\n*3\r\n$8\r\nSPUBLISH\r\n$1\r\nb\r\n$1\r\nx\r\n
        "#,
    );
}
