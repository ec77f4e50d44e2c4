//! SPEC clauses that had no test of their own, each checked the
//! differential way: the same wire script against Herald and redis-server,
//! byte-identical transcripts.

mod support;

use support::same_as_redis;

/// §2.5: a subscriber on one database hears a publisher on another.
#[test]
fn channels_are_global_across_databases() {
    same_as_redis(
        "
        s> SELECT 3
        s> SUBSCRIBE news
        t> SELECT 9
        t> PSUBSCRIBE n*
        p> PUBLISH news hello
        s> read 1
        t> read 1
        p> SELECT 5
        p> PUBLISH news again
        s> read 1
        t> read 1
        p> PUBSUB NUMSUB news
        p> PUBSUB NUMPAT
        ",
    );
}

/// §1.5: NUMPAT counts distinct patterns, however many connections hold
/// each.
#[test]
fn numpat_counts_distinct_patterns_across_connections() {
    same_as_redis(
        "
        a> PSUBSCRIBE a* b*
        a> read 1
        b> PSUBSCRIBE a*
        c> PSUBSCRIBE a* c*
        c> read 1
        p> PUBSUB NUMPAT
        p> PUBLISH apple x
        a> read 1
        b> read 1
        c> read 1
        a> 2| PUNSUBSCRIBE
        p> PUBSUB NUMPAT
        c> 2| PUNSUBSCRIBE
        p> PUBSUB NUMPAT
        b> PUNSUBSCRIBE a*
        p> PUBSUB NUMPAT
        ",
    );
}

/// §7.2: multibulk counts past 2^31-1 and counts or lengths that are not
/// numbers are protocol errors, with Redis' words, and close the
/// connection.
#[test]
fn multibulk_and_bulk_counts_out_of_range_or_not_numbers() {
    for raw in [
        r"*2147483648\r\n",
        r"*9223372036854775808\r\n",
        r"*12x\r\n",
        r"*\r\n",
        r"*1\r\n$2147483648\r\n",
        r"*1\r\n$1x\r\n",
        r"*1\r\n$\r\n",
        r"*1\r\n$-2\r\n",
    ] {
        same_as_redis(&format!("c> raw 2| {raw}"));
    }
    // Negative or zero counts are no command at all; the connection goes on.
    same_as_redis(r"c> raw 1| *-5\r\n*0\r\nPING\r\n");
}

/// §8.2: channel permissions hold for SPUBLISH and SSUBSCRIBE, and inside
/// a pipelined run of publishes each is checked on its own.
#[test]
fn channel_permissions_for_shard_commands_and_pipelined_runs() {
    same_as_redis(
        r"
        admin> ACL SETUSER u on >pw +@all &ok*
        s> AUTH u pw
        s> SSUBSCRIBE ok1
        s> SSUBSCRIBE no1
        s> SSUBSCRIBE ok2 no2
        s> SUNSUBSCRIBE
        s> SUBSCRIBE ok3
        p> AUTH u pw
        p> SPUBLISH no1 x
        p> SPUBLISH ok1 x
        p> raw 4| PUBLISH ok3 a\r\nPUBLISH no3 b\r\nPUBLISH ok3 c\r\nSPUBLISH no1 d\r\n
        s> read 2
        ",
    );
}
