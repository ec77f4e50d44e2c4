//! §1 (wire compatibility) and §5 (Herald's deliberate differences), one
//! connection or two at a time. Expected bytes are Redis 7.0.15's: SPEC §1.1
//! makes them the specification.

use std::collections::BTreeSet;

use herald_client::Value;

use crate::conn::Conn;
use crate::{ensure, info_field, text, Outcome, Target};

/// RESP2 bulk string.
fn bulk(s: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", s.len()).into_bytes();
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
    out
}

/// An array (`*`) or push (`>`) of already encoded items.
fn aggregate(kind: u8, items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("{}{}\r\n", kind as char, items.len()).into_bytes();
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

/// A pub/sub frame (confirmation or message) as Redis writes it: an array
/// in RESP2, a push in RESP3.
pub(crate) fn pubsub_frame(resp3: bool, items: &[Vec<u8>]) -> Vec<u8> {
    aggregate(if resp3 { b'>' } else { b'*' }, items)
}

/// A confirmation: kind, name, count.
pub(crate) fn confirmation(resp3: bool, kind: &str, name: &str, count: i64) -> Vec<u8> {
    pubsub_frame(resp3, &[bulk(kind.as_bytes()), bulk(name.as_bytes()), int(count)])
}

/// Reads one frame and checks its bytes.
pub(crate) fn expect_bytes(c: &mut Conn, after: &str, want: &[u8]) -> Outcome {
    let got = c.read().map_err(|e| format!("after {after}: {e}"))?;
    ensure!(got.raw == want, "after {after}: got {} instead of {}", got.text(), want.escape_ascii());
    Ok(())
}

/// Sends a command and checks the bytes of its reply.
pub(crate) fn call_expect(c: &mut Conn, args: &[&str], want: &[u8]) -> Outcome {
    c.send(args)?;
    expect_bytes(c, &args.join(" "), want)
}

pub(crate) fn replies_are_redis_bytes(t: &Target) -> Outcome {
    let (a, s) = (t.channel("a"), t.channel("s"));
    let p = t.channel("*");
    let mut sub = Conn::open(t)?;
    call_expect(&mut sub, &["SUBSCRIBE", &a], &confirmation(false, "subscribe", &a, 1))?;
    call_expect(&mut sub, &["PSUBSCRIBE", &p], &confirmation(false, "psubscribe", &p, 2))?;
    call_expect(&mut sub, &["SSUBSCRIBE", &s], &confirmation(false, "ssubscribe", &s, 1))?;
    let mut sub3 = Conn::open(t)?;
    sub3.hello3()?;
    call_expect(&mut sub3, &["SUBSCRIBE", &a], &confirmation(true, "subscribe", &a, 1))?;

    let mut publisher = Conn::open(t)?;
    call_expect(&mut publisher, &["PUBLISH", &a, "hello"], &int(3))?;
    let message = |resp3| pubsub_frame(resp3, &[bulk(b"message"), bulk(a.as_bytes()), bulk(b"hello")]);
    expect_bytes(&mut sub, "PUBLISH", &message(false))?;
    expect_bytes(
        &mut sub,
        "PUBLISH",
        &aggregate(b'*', &[bulk(b"pmessage"), bulk(p.as_bytes()), bulk(a.as_bytes()), bulk(b"hello")]),
    )?;
    expect_bytes(&mut sub3, "PUBLISH", &message(true))?;
    call_expect(&mut publisher, &["SPUBLISH", &s, "x"], &int(1))?;
    expect_bytes(&mut sub, "SPUBLISH", &aggregate(b'*', &[bulk(b"smessage"), bulk(s.as_bytes()), bulk(b"x")]))?;

    let nobody = t.channel("nobody");
    let numsub = aggregate(b'*', &[bulk(a.as_bytes()), int(2), bulk(nobody.as_bytes()), int(0)]);
    call_expect(&mut publisher, &["PUBSUB", "NUMSUB", &a, &nobody], &numsub)?;
    let shardnumsub = aggregate(b'*', &[bulk(s.as_bytes()), int(1)]);
    call_expect(&mut publisher, &["PUBSUB", "SHARDNUMSUB", &s], &shardnumsub)?;

    call_expect(&mut sub, &["UNSUBSCRIBE", &a], &confirmation(false, "unsubscribe", &a, 1))?;
    call_expect(&mut sub, &["PUNSUBSCRIBE", &p], &confirmation(false, "punsubscribe", &p, 0))?;
    call_expect(&mut sub, &["SUNSUBSCRIBE", &s], &confirmation(false, "sunsubscribe", &s, 0))?;
    let none = aggregate(b'*', &[bulk(b"unsubscribe"), b"$-1\r\n".to_vec(), int(0)]);
    call_expect(&mut sub, &["UNSUBSCRIBE"], &none)?;
    call_expect(&mut sub3, &["UNSUBSCRIBE", &a], &confirmation(true, "unsubscribe", &a, 0))?;
    Ok(())
}

/// Writes `request` (described as `what`) on a fresh connection and
/// expects `error`, then a close.
pub(crate) fn refused(t: &Target, what: &str, request: &[u8], error: &str) -> Outcome {
    let mut c = Conn::open(t)?;
    // The server may close before it has read it all: a failed write is
    // judged by what was answered.
    let _ = c.write(request);
    let got = c.closes().map_err(|e| format!("{what}: {e}"))?;
    ensure!(got == format!("{error}\r\n").as_bytes(), "{what} got {} (and a close), not {error}", got.escape_ascii());
    Ok(())
}

pub(crate) fn requests_are_parsed_by_redis_rules(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    c.write(b"PING\r\n")?;
    expect_bytes(&mut c, "inline PING", b"+PONG\r\n")?;
    c.write(b"ECHO \"a b\\x41\"\r\n")?;
    expect_bytes(&mut c, "inline ECHO with quotes", &bulk(b"a bA"))?;
    c.write(b"\r\n*0\r\n")?;
    c.write(
        &[
            herald_client::encode_command(&[b"PING"]),
            b"ECHO 'x y'\r\n".to_vec(),
            herald_client::encode_command(&[b"ECHO".as_slice(), b"z"]),
        ]
        .concat(),
    )?;
    expect_bytes(&mut c, "a pipeline after an empty line and *0", b"+PONG\r\n")?;
    expect_bytes(&mut c, "a pipeline", &bulk(b"x y"))?;
    expect_bytes(&mut c, "a pipeline", &bulk(b"z"))?;
    refused(t, "*abc", b"*abc\r\n", "-ERR Protocol error: invalid multibulk length")?;
    refused(t, "a bulk length $abc", b"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length")?;
    refused(t, "foo in a multibulk", b"*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'")?;
    refused(t, "unbalanced quotes", b"ECHO \"a\r\n", "-ERR Protocol error: unbalanced quotes in request")?;
    Ok(())
}

pub(crate) fn subscribed_context(t: &Target) -> Outcome {
    let a = t.channel("a");
    let mut c = Conn::open(t)?;
    call_expect(&mut c, &["SUBSCRIBE", &a], &confirmation(false, "subscribe", &a, 1))?;
    let refusal = "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
    call_expect(&mut c, &["GET", "x"], refusal.as_bytes())?;
    call_expect(&mut c, &["PING"], &aggregate(b'*', &[bulk(b"pong"), bulk(b"")]))?;
    call_expect(&mut c, &["PING", "hi"], &aggregate(b'*', &[bulk(b"pong"), bulk(b"hi")]))?;
    call_expect(&mut c, &["RESET"], b"+RESET\r\n")?;
    // RESET went back to the default user, who may need the password.
    c.authenticate(t)?;
    call_expect(&mut c, &["PING"], b"+PONG\r\n")?;

    let mut c3 = Conn::open(t)?;
    c3.hello3()?;
    call_expect(&mut c3, &["SUBSCRIBE", &a], &confirmation(true, "subscribe", &a, 1))?;
    call_expect(&mut c3, &["PING"], b"+PONG\r\n")?;
    call_expect(&mut c3, &["ECHO", "still"], &bulk(b"still"))?;
    Ok(())
}

/// Patterns (after the run's prefix) and, for each channel, the patterns
/// Redis' `stringmatchlen` matches it with.
const GLOB_PATTERNS: &[&str] = &["h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo", "h\\*llo", "h[lo"];
const GLOB_CASES: &[(&str, &[&str])] = &[
    ("hello", &["h?llo", "h*llo", "h[ae]llo"]),
    ("hallo", &["h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo"]),
    ("hbllo", &["h?llo", "h*llo", "h[^e]llo", "h[a-b]llo", "h[b-a]llo"]),
    ("hllo", &["h*llo"]),
    ("heeello", &["h*llo"]),
    ("h*llo", &["h?llo", "h*llo", "h[^e]llo", "h\\*llo"]),
    ("hillo", &["h?llo", "h*llo", "h[^e]llo"]),
    ("hl", &["h[lo"]),
    ("ho", &["h[lo"]),
    ("h[lo", &[]),
];

pub(crate) fn glob_patterns(t: &Target) -> Outcome {
    let prefix = format!("{}:", t.nonce);
    let mut sub = Conn::open(t)?;
    for (i, p) in GLOB_PATTERNS.iter().enumerate() {
        let pattern = format!("{prefix}{p}");
        call_expect(&mut sub, &["PSUBSCRIBE", &pattern], &confirmation(false, "psubscribe", &pattern, i as i64 + 1))?;
    }
    // Binary-safe: a NUL and a non-UTF-8 byte in pattern, channel, payload.
    let binary_pattern = [prefix.as_bytes(), b"bin\x00*"].concat();
    sub.send_bytes(&[b"PSUBSCRIBE", &binary_pattern])?;
    sub.read()?;
    let mut publisher = Conn::open(t)?;
    let mut cases: Vec<(Vec<u8>, BTreeSet<Vec<u8>>)> = GLOB_CASES
        .iter()
        .map(|(channel, matched)| {
            let want = matched.iter().map(|p| format!("{prefix}{p}").into_bytes()).collect();
            (format!("{prefix}{channel}").into_bytes(), want)
        })
        .collect();
    cases.push(([prefix.as_bytes(), b"bin\x00\xff"].concat(), [binary_pattern.clone()].into()));
    for (channel, want) in cases {
        publisher.send_bytes(&[b"PUBLISH", &channel, b"\x00payload\xff"])?;
        let count = publisher.read()?;
        let mut got = BTreeSet::new();
        for _ in 0..count.value.as_int().unwrap_or(0) {
            let frame = sub.read()?;
            let items = frame.value.items().unwrap_or_default();
            ensure!(
                items.len() == 4
                    && items[2].as_bytes() == Some(&channel)
                    && items[3].as_bytes() == Some(b"\x00payload\xff"),
                "PUBLISH {} delivered {}",
                channel.escape_ascii(),
                frame.text()
            );
            got.insert(items[1].as_bytes().unwrap_or_default().to_vec());
        }
        let show = |set: &BTreeSet<Vec<u8>>| set.iter().map(|p| p.escape_ascii().to_string()).collect::<Vec<_>>();
        ensure!(got == want, "{} matched {:?}, not {:?}", channel.escape_ascii(), show(&got), show(&want));
    }
    Ok(())
}

pub(crate) fn counts(t: &Target) -> Outcome {
    let (c, s, s2) = (t.channel("c"), t.channel("s"), t.channel("s2"));
    let (cstar, all) = (t.channel("c*"), t.channel("*"));
    let mut observer = Conn::open(t)?;
    let numpat = |o: &mut Conn| -> Result<i64, String> {
        let reply = o.call(&["PUBSUB", "NUMPAT"])?;
        reply.value.as_int().ok_or_else(|| format!("NUMPAT answered {}", reply.text()))
    };
    let before = numpat(&mut observer)?;
    let mut a = Conn::open(t)?;
    call_expect(&mut a, &["SUBSCRIBE", &c], &confirmation(false, "subscribe", &c, 1))?;
    call_expect(&mut a, &["PSUBSCRIBE", &cstar], &confirmation(false, "psubscribe", &cstar, 2))?;
    call_expect(&mut a, &["SSUBSCRIBE", &s], &confirmation(false, "ssubscribe", &s, 1))?;
    call_expect(&mut a, &["SSUBSCRIBE", &s2], &confirmation(false, "ssubscribe", &s2, 2))?;
    let mut b = Conn::open(t)?;
    b.send(&["SUBSCRIBE", &c])?;
    b.send(&["PSUBSCRIBE", &cstar, &all])?;
    for _ in 0..3 {
        b.read()?;
    }
    let after = numpat(&mut observer)?;
    ensure!(
        after - before == 2,
        "NUMPAT went from {before} to {after} with two distinct patterns (one subscribed twice)"
    );
    // 2 channel subscribers, c* twice, * once.
    call_expect(&mut observer, &["PUBLISH", &c, "m"], &int(5))?;
    call_expect(&mut observer, &["PUBLISH", &t.channel("other"), "m"], &int(1))?;
    call_expect(&mut observer, &["SPUBLISH", &s, "m"], &int(1))?;
    call_expect(&mut observer, &["SPUBLISH", &t.channel("nobody"), "m"], &int(0))?;
    // a got a message, a pmessage and an smessage; then its unsubscribe
    // counts what is left.
    for _ in 0..3 {
        a.read()?;
    }
    call_expect(&mut a, &["UNSUBSCRIBE", &c], &confirmation(false, "unsubscribe", &c, 1))?;
    call_expect(&mut a, &["SUNSUBSCRIBE", &s], &confirmation(false, "sunsubscribe", &s, 1))?;
    Ok(())
}

pub(crate) fn multi_exec(t: &Target) -> Outcome {
    let c = t.channel("c");
    let mut sub = Conn::open(t)?;
    call_expect(&mut sub, &["SUBSCRIBE", &c], &confirmation(false, "subscribe", &c, 1))?;
    let mut m = Conn::open(t)?;
    call_expect(&mut m, &["MULTI"], b"+OK\r\n")?;
    call_expect(&mut m, &["PUBLISH", &c, "in-exec"], b"+QUEUED\r\n")?;
    call_expect(&mut m, &["PING"], b"+QUEUED\r\n")?;
    call_expect(&mut m, &["EXEC"], b"*2\r\n:1\r\n+PONG\r\n")?;
    expect_bytes(&mut sub, "EXEC", &aggregate(b'*', &[bulk(b"message"), bulk(c.as_bytes()), bulk(b"in-exec")]))?;
    call_expect(&mut m, &["MULTI"], b"+OK\r\n")?;
    call_expect(&mut m, &["NOSUCHCOMMAND"], b"-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \r\n")?;
    call_expect(&mut m, &["EXEC"], b"-EXECABORT Transaction discarded because of previous errors.\r\n")?;
    Ok(())
}

pub(crate) fn client_reply(t: &Target) -> Outcome {
    let c = t.channel("c");
    let mut conn = Conn::open(t)?;
    conn.send(&["CLIENT", "REPLY", "SKIP"])?;
    conn.send(&["PING"])?;
    call_expect(&mut conn, &["ECHO", "after-skip"], &bulk(b"after-skip"))?;
    conn.send(&["CLIENT", "REPLY", "OFF"])?;
    conn.send(&["PING"])?;
    // Pushes are not replies: the confirmation and the message still come.
    call_expect(&mut conn, &["SUBSCRIBE", &c], &confirmation(false, "subscribe", &c, 1))?;
    let mut publisher = Conn::open(t)?;
    call_expect(&mut publisher, &["PUBLISH", &c, "m"], &int(1))?;
    expect_bytes(&mut conn, "PUBLISH", &aggregate(b'*', &[bulk(b"message"), bulk(c.as_bytes()), bulk(b"m")]))?;
    Ok(())
}

/// Whether the server says it runs in cluster mode.
fn cluster_enabled(t: &Target) -> Result<bool, String> {
    let mut c = Conn::open(t)?;
    Ok(info_field(&mut c, "cluster", "cluster_enabled")? == "1")
}

pub(crate) fn operator_commands(t: &Target) -> Outcome {
    let c = t.channel("c");
    let mut conn = Conn::open(t)?;
    if !cluster_enabled(t)? {
        call_expect(&mut conn, &["CLUSTER", "INFO"], b"-ERR This instance has cluster support disabled\r\n")?;
        call_expect(&mut conn, &["READONLY"], b"-ERR This instance has cluster support disabled\r\n")?;
    }
    call_expect(&mut conn, &["ROLE"], b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")?;
    let time = conn.call(&["TIME"])?;
    let parts: Vec<String> = time.value.items().unwrap_or_default().iter().filter_map(text).collect();
    ensure!(
        parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "TIME answered {}",
        time.text()
    );

    // Cluster clients route SPUBLISH and SSUBSCRIBE by COMMAND INFO's key
    // positions: the shard channel is the first argument.
    for (command, last) in [("spublish", 1), ("ssubscribe", -1)] {
        let info = conn.call(&["COMMAND", "INFO", command])?;
        let entry = info.value.items().and_then(|all| all.first()).and_then(Value::items).unwrap_or_default();
        let keys: Vec<Option<i64>> =
            entry.iter().skip(3).take(3).map(|v| if let Value::Int(n) = v { Some(*n) } else { None }).collect();
        ensure!(
            keys == [Some(1), Some(last), Some(1)],
            "COMMAND INFO {command} gave key positions {keys:?}, not 1, {last}, 1: {}",
            info.text()
        );
    }

    let mut monitor = Conn::open(t)?;
    call_expect(&mut monitor, &["MONITOR"], b"+OK\r\n")?;
    conn.call(&["PUBLISH", &c, "a \"b\""])?;
    conn.call(&["AUTH", "no-such-user", "secret"])?;
    for want in [format!(" \"PUBLISH\" \"{c}\" \"a \\\"b\\\"\""), " \"AUTH\" \"(redacted)\" \"(redacted)\"".to_string()]
    {
        let line = monitor.read()?;
        let shown = match &line.value {
            Value::Simple(s) => s.clone(),
            _ => String::new(),
        };
        // +<seconds>.<microseconds> [<db> <address>] "arg" …
        let (stamp, rest) = shown.split_once(' ').unwrap_or_default();
        let (secs, micros) = stamp.split_once('.').unwrap_or_default();
        let well_formed = !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit())
            && rest.starts_with("[0 ")
            && rest.split_once(']').is_some_and(|(_, args)| args == want);
        ensure!(well_formed, "MONITOR showed {} where a line ending {want} was due", line.text());
    }
    Ok(())
}

/// The sections a plain INFO prints, in Redis' order.
const DEFAULT_SECTIONS: &[&str] = &[
    "Server",
    "Clients",
    "Memory",
    "Persistence",
    "Stats",
    "Replication",
    "CPU",
    "Modules",
    "Errorstats",
    "Cluster",
    "Keyspace",
];

pub(crate) fn info_sections(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    let reply = c.call(&["INFO"])?;
    let body = text(&reply.value).ok_or_else(|| format!("INFO answered {}", reply.text()))?;
    let sections: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("# ")).collect();
    ensure!(sections == DEFAULT_SECTIONS, "INFO's sections are {sections:?}, not {DEFAULT_SECTIONS:?}");
    for field in [
        "redis_version",
        "connected_clients",
        "pubsub_channels",
        "pubsub_patterns",
        "pubsubshard_channels",
        "role",
        "cluster_enabled",
    ] {
        ensure!(body.lines().any(|l| l.starts_with(&format!("{field}:"))), "INFO has no {field}");
    }
    let channels = |c: &mut Conn| -> Result<i64, String> {
        info_field(c, "stats", "pubsub_channels")?.parse().map_err(|e| format!("pubsub_channels: {e}"))
    };
    let before = channels(&mut c)?;
    let mut sub = Conn::open(t)?;
    let fresh = t.channel("info");
    call_expect(&mut sub, &["SUBSCRIBE", &fresh], &confirmation(false, "subscribe", &fresh, 1))?;
    let after = channels(&mut c)?;
    ensure!(after > before, "pubsub_channels stayed {before} after a new channel was subscribed");
    c.call(&["PUBLISH", &fresh, "m"])?;
    let stats = c.call(&["INFO", "commandstats"])?;
    let stats = text(&stats.value).unwrap_or_default();
    ensure!(
        stats.contains("cmdstat_publish:calls="),
        "INFO commandstats has no cmdstat_publish after a PUBLISH: {stats}"
    );
    Ok(())
}

pub(crate) fn configuration(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    for name in [
        "save",
        "appendonly",
        "maxmemory-policy",
        "hz",
        "client-output-buffer-limit",
        "notify-keyspace-events",
        "timeout",
    ] {
        let reply = c.call(&["CONFIG", "GET", name])?;
        let n = match &reply.value {
            Value::Array(items) => items.len() / 2,
            Value::Map(pairs) => pairs.len(),
            _ => 0,
        };
        ensure!(n == 1, "CONFIG GET {name} answered {}", reply.text());
    }
    // A value is checked as Redis checks it, with Redis' words, and shown
    // as Redis shows it (a memory value in bytes); the setting is put back.
    call_expect(
        &mut c,
        &["CONFIG", "SET", "hz", "abc"],
        b"-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n",
    )?;
    let before = c.call(&["CONFIG", "GET", "hash-max-listpack-value"])?;
    let before = before.value.items().and_then(|kv| kv.get(1)).and_then(text).unwrap_or_default();
    call_expect(&mut c, &["CONFIG", "SET", "hash-max-listpack-value", "1kb"], b"+OK\r\n")?;
    let shown = c.call(&["CONFIG", "GET", "hash-max-listpack-value"])?;
    c.call(&["CONFIG", "SET", "hash-max-listpack-value", &before])?;
    ensure!(shown.text().ends_with("$4\\r\\n1024\\r\\n"), "CONFIG GET after 1kb answered {}", shown.text());
    Ok(())
}

pub(crate) fn client_setinfo_accepted(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    call_expect(&mut c, &["CLIENT", "SETINFO", "lib-name", "conformance"], b"+OK\r\n")?;
    let info = c.call(&["CLIENT", "INFO"])?;
    ensure!(
        text(&info.value).unwrap_or_default().contains("lib-name=conformance"),
        "CLIENT INFO shows {}",
        info.text()
    );
    Ok(())
}

pub(crate) fn keyspace_commands_are_unknown(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    let want = "-ERR unknown command 'GET', with args beginning with: 'x' \r\n";
    call_expect(&mut c, &["GET", "x"], want.as_bytes())
}

pub(crate) fn scripts_are_unknown(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    let want = "-ERR unknown command 'EVAL', with args beginning with: 'return 1' '0' \r\n";
    call_expect(&mut c, &["EVAL", "return 1", "0"], want.as_bytes())
}

pub(crate) fn non_utf8_in_error_texts(t: &Target) -> Outcome {
    let mut c = Conn::open(t)?;
    c.send_bytes(&[b"N\xffO"])?;
    expect_bytes(
        &mut c,
        "an unknown command N\\xffO",
        "-ERR unknown command 'N\u{fffd}O', with args beginning with: \r\n".as_bytes(),
    )
}

pub(crate) fn half_closed_client_gets_its_replies(t: &Target) -> Outcome {
    // More output than the socket buffers hold: replies are still being
    // written when the server reads the end of the input.
    const COMMANDS: usize = 200;
    let mut c = Conn::open(t)?;
    c.write(&b"COMMAND\r\n".repeat(COMMANDS))?;
    c.shutdown_write()?;
    let mut answered = 0;
    while answered < COMMANDS {
        match c.read() {
            Ok(frame) if matches!(frame.value, Value::Array(_)) => answered += 1,
            Ok(frame) => return Err(format!("COMMAND {answered} answered {}", frame.text()).into()),
            Err(e) => {
                return Err(format!("{answered} of {COMMANDS} COMMAND replies before the half-close ended: {e}").into())
            }
        }
    }
    Ok(())
}
