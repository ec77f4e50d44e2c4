//! The same wire scripts against Herald and a redis-server started here;
//! the transcripts must be byte-identical (client ids masked).

mod support;

use support::same_as_redis;

#[test]
fn publish_subscribe_and_counts() {
    same_as_redis(
        "
        a> 2| SUBSCRIBE news sport
        b> PSUBSCRIBE news*
        c> SSUBSCRIBE shard1
        p> PUBLISH news hello
        a> read 1
        b> read 1
        p> PUBLISH sport \"two words\"
        a> read 1
        p> PUBLISH nobody x
        p> SPUBLISH shard1 s
        c> read 1
        p> PUBSUB NUMSUB news sport nobody
        p> PUBSUB NUMPAT
        p> PUBSUB SHARDNUMSUB shard1 other
        p> PUBSUB CHANNELS s*
        p> PUBSUB SHARDCHANNELS
        p> PUBSUB SHARDCHANNELS shard*
        p> PUBSUB SHARDCHANNELS x*
        a> UNSUBSCRIBE news
        p> PUBLISH news after
        b> read 1
        a> 1| UNSUBSCRIBE
        a> UNSUBSCRIBE
        b> PUNSUBSCRIBE
        c> SUNSUBSCRIBE shard1
        p> PUBSUB NUMSUB news sport
        ",
    );
}

#[test]
fn subscribed_context_rules_resp2() {
    same_as_redis(
        "
        a> SUBSCRIBE ch
        a> PUBLISH ch x
        a> ECHO hi
        a> PING
        a> PING msg
        a> 2| PSUBSCRIBE p* p*
        a> SSUBSCRIBE s
        a> PUBSUB NUMPAT
        a> 2| PUNSUBSCRIBE p* nothere
        a> SUNSUBSCRIBE
        a> UNSUBSCRIBE
        a> PING
        a> ECHO back
        ",
    );
}

#[test]
fn resp3_pushes_and_commands_while_subscribed() {
    same_as_redis(
        "
        a> HELLO 3
        a> SUBSCRIBE ch
        a> PING
        a> PUBLISH ch self
        a> read 1
        a> PUBSUB NUMSUB ch
        a> PSUBSCRIBE c?
        b> PUBLISH ch other
        a> read 2
        a> PUNSUBSCRIBE
        a> UNSUBSCRIBE
        a> HELLO 2
        ",
    );
}

/// One connection per pattern: Redis orders several patterns matching one
/// message by its hash table, which is not part of the contract.
#[test]
fn glob_syntax() {
    same_as_redis(
        r"
        s1> PSUBSCRIBE h?llo
        s2> PSUBSCRIBE h*llo
        s3> PSUBSCRIBE h[ae]llo
        s4> PSUBSCRIBE h[^e]llo
        s5> PSUBSCRIBE h[a-b]llo
        s6> PSUBSCRIBE a[
        s7> PSUBSCRIBE x\*y
        s8> PSUBSCRIBE [z-a]
        p> PUBLISH hello 1
        p> PUBLISH hallo 2
        p> PUBLISH x*y 3
        p> PUBLISH xay 4
        p> PUBLISH a[ 5
        p> PUBLISH m 6
        s1> read 2
        s2> read 2
        s3> read 2
        s4> read 1
        s5> read 1
        s7> read 1
        s8> read 1
        p> PUBSUB NUMPAT
        ",
    );
}

#[test]
fn connection_commands_and_errors() {
    same_as_redis(
        "
        c> PING
        c> PING hello
        c> PING a b
        c> ECHO x
        c> ECHO
        c> FOO a b
        c> foo
        c> PUBLISH ch
        c> SUBSCRIBE
        c> HELLO 4
        c> HELLO x
        c> HELLO 2 AUTH a
        c> HELLO 2 SETNAME \"a b\"
        c> HELLO 2 FOO
        c> HELLO 2 SETNAME herald
        c> CLIENT GETNAME
        c> CLIENT SETNAME \"\"
        c> CLIENT GETNAME
        c> AUTH x
        c> AUTH a b
        c> AUTH default whatever
        c> SELECT 1
        c> SELECT 16
        c> SELECT x
        c> PUBSUB
        c> PUBSUB FOO
        c> PUBSUB CHANNELS a b
        c> PUBSUB NUMPAT extra
        c> PUBSUB HELP
        c> CLIENT
        c> CLIENT FOO
        c> CLIENT SETNAME
        c> CLIENT KILL 1.2.3.4:5
        c> CLIENT KILL ID 999999
        c> CLIENT NO-EVICT on
        c> DBSIZE
        c> FLUSHALL
        c> FLUSHDB ASYNC
        c> CONFIG SET nosuchsetting 1
        c> CONFIG
        c> RESET
        c> QUIT
        c> eof
        ",
    );
}

#[test]
fn multi_exec() {
    same_as_redis(
        "
        s> SUBSCRIBE t
        c> MULTI
        c> PUBLISH t one
        c> PUBLISH t two
        c> PING
        c> EXEC
        s> read 2
        c> MULTI
        c> FOO
        c> EXEC
        c> MULTI
        c> MULTI
        c> DISCARD
        c> EXEC
        c> DISCARD
        c> WATCH k
        c> UNWATCH
        c> MULTI
        c> SHUTDOWN
        c> WATCH k
        c> EXEC
        c> SHUTDOWN ABORT
        c> SHUTDOWN SAVE NOSAVE
        c> SHUTDOWN bogus
        ",
    );
}

#[test]
fn client_reply_modes() {
    same_as_redis(
        "
        c> 0| CLIENT REPLY OFF
        c> 0| PING
        c> CLIENT REPLY ON
        c> 0| CLIENT REPLY SKIP
        c> 0| PING skipped
        c> PING shown
        c> CLIENT REPLY maybe
        ",
    );
    // Pipelined publishes after SKIP: only the first reply is skipped (a
    // run of publishes must not take SKIP for all of them), and after OFF
    // none is sent.
    same_as_redis(
        r"
        c> raw 2| CLIENT REPLY SKIP\r\nPUBLISH a 1\r\nPUBLISH a 2\r\nPING\r\n
        c> raw 1| CLIENT REPLY OFF\r\nPUBLISH a 3\r\nPUBLISH a 4\r\nCLIENT REPLY ON\r\n
        ",
    );
}

#[test]
fn protocol_errors_close_the_connection() {
    for raw in [r"*1\r\n+x\r\n", r"*a\r\n", r"*2\r\n$-1\r\n", r"PING \x22a\r\n", r"*1\r\n$99999999999\r\n"] {
        same_as_redis(&format!("c> raw 2| {raw}"));
    }
    same_as_redis(r"c> raw 3| PING\r\n\r\n*0\r\nECHO 'x y'\r\n*1\r\n$4\r\nPING\r\n");
}

/// Nothing pipelined after QUIT runs: its reply is the last thing the
/// client reads before the server closes (so a PUBLISH behind it reaches
/// no subscriber).
#[test]
fn nothing_pipelined_after_quit_runs() {
    same_as_redis(
        r"
        s> SUBSCRIBE ch
        p> raw 2| PING\r\nQUIT\r\nPUBLISH ch lost\r\nPING\r\n
        p> eof
        s> PING
        ",
    );
}

#[test]
fn pipelined_publishes_and_inline_commands() {
    let mut raw = String::new();
    for i in 0..50 {
        raw.push_str(&format!(r"PUBLISH ch m{i}\r\n"));
    }
    same_as_redis(&format!(
        "
        s> SUBSCRIBE ch
        p> raw 50| {raw}
        s> read 50
        "
    ));
}

/// Found by fuzzing: a command name with CR/LF in it must not break the
/// error line (Redis turns them into spaces).
#[test]
fn newlines_in_echoed_arguments_stay_on_one_line() {
    same_as_redis(r"c> raw 2| *2\r\n$4\r\na\r\nb\r\n$3\r\nx\ny\r\nPING\r\n");
}

#[test]
fn acl_users_commands_and_channels() {
    same_as_redis(
        r#"
        a> ACL SETUSER alice on >pw &news:* +@pubsub
        a> ACL SETUSER bob
        a> ACL SETUSER carol on nopass allchannels +publish -@all +subscribe ~k*
        a> ACL LIST
        a> ACL USERS
        a> ACL WHOAMI
        a> ACL SETUSER eve bogus
        a> ACL SETUSER eve +nosuchcommand
        a> ACL DELUSER default
        u> AUTH alice wrong
        u> AUTH nobody pw
        u> AUTH bob anything
        u> AUTH alice pw
        u> PING
        u> ACL WHOAMI
        u> PUBLISH other x
        u> PUBLISH news:1 x
        u> SUBSCRIBE news:1 other
        u> PSUBSCRIBE news:1*
        u> PSUBSCRIBE news:*
        p> PUBLISH news:2 hello
        u> read 1
        u> PUNSUBSCRIBE
        u> SUBSCRIBE news:3
        a> ACL SETUSER alice resetchannels &sports
        u> eof
        v> HELLO 3 AUTH alice pw
        v> SUBSCRIBE sports
        a> ACL DELUSER alice nobody
        v> eof
        c> AUTH carol x
        c> PUBLISH a b
        c> CLIENT LIST
        "#,
    );
}

#[test]
fn requirepass_and_noauth() {
    same_as_redis(
        r#"
        a> AUTH something
        a> CONFIG SET requirepass secret
        n> PING
        n> PUBLISH c m
        n> HELLO 3
        n> AUTH wrong
        n> AUTH secret
        n> PING
        n> RESET
        n> PING
        m> HELLO 3 AUTH default secret
        m> PING
        a> CONFIG SET requirepass ""
        a> AUTH x
        "#,
    );
}

/// RESET as Redis 7.0's `clearClientConnectionState`: name, tracking,
/// protocol, database and MONITOR go; CLIENT NO-EVICT stays.
#[test]
fn reset_clears_the_connection_state() {
    same_as_redis(
        "
        c> CLIENT SETNAME foo
        c> CLIENT NO-EVICT on
        c> CLIENT TRACKING on
        c> HELLO 3
        c> SELECT 2
        c> RESET
        c> CLIENT GETNAME
        c> CLIENT TRACKINGINFO
        c> PING
        m> MONITOR
        m> RESET
        c> PING
        m> PING
        ",
    );
}
