//! What operators type first when something is slow — MONITOR, SLOWLOG,
//! LATENCY, CLIENT PAUSE, INFO — checked on Herald and, where the output
//! can be compared, on a redis-server started here (SPEC §1.9–1.11).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{herald, herald_with, redis, Conn, REPLY_TIMEOUT};

/// Runs `redis-cli monitor` against `port`, sends `commands` from another
/// connection (the last one a PING marking the end) and returns the
/// monitor's lines with timestamps and ports masked.
fn monitor_transcript(port: u16, commands: &[&[&str]]) -> Vec<String> {
    let mut cli = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli (scripts/test installs redis-tools)");
    // Read on a thread of its own, so a monitor that stops showing lines
    // fails the test instead of hanging it.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = cli.stdout.take().unwrap();
    std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    let mut lines = std::iter::from_fn(|| {
        Some(lines.recv_timeout(REPLY_TIMEOUT).expect("the monitor showed nothing more within REPLY_TIMEOUT"))
    });
    assert_eq!(lines.next().unwrap(), "OK");
    let mut c = Conn::open(port);
    for args in commands {
        c.cmd(args);
    }
    c.cmd(&["ECHO", "the end"]);
    let mut seen = Vec::new();
    for line in lines {
        let end = line.ends_with("\"ECHO\" \"the end\"");
        // `1700000000.123456 [0 127.0.0.1:40000] "publish" …`
        let (stamp, rest) = line.split_once(' ').expect("a timestamp");
        assert!(stamp.len() == 17 && stamp.as_bytes()[10] == b'.', "{line}");
        let (db, rest) = rest.split_once(' ').expect("a db");
        let (_, args) = rest.split_once("] ").expect("an address");
        seen.push(format!("{db} {args}"));
        if end {
            break;
        }
    }
    let _ = cli.kill();
    let _ = cli.wait();
    seen
}

/// `redis-cli monitor` sees Herald's commands exactly as Redis', secrets
/// redacted, admin commands hidden, EXEC after its commands.
#[test]
fn redis_cli_monitor_sees_what_redis_shows() {
    let commands: &[&[&str]] = &[
        &["PING"],
        &["AUTH", "secret"],
        &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "mon"],
        &["CONFIG", "GET", "port"],
        &["PUBLISH", "ch", "a b\n\x01\"q\\"],
        &["SUBSCRIBE", "x"],
        &["UNSUBSCRIBE", "x"],
        &["MULTI"],
        &["PING", "in"],
        &["EXEC"],
        &["SELECT", "3"],
        &["ECHO", "in db 3"],
        &["CLIENT", "LIST"],
        &["SLOWLOG", "LEN"],
        &["NOSUCH"],
    ];
    let (h, r) = (herald(), redis());
    let ours = monitor_transcript(h.port, commands);
    let theirs = monitor_transcript(r.port, commands);
    assert_eq!(ours, theirs, "Herald (left) and Redis (right)");
    assert!(ours.iter().any(|l| l.contains("\"PUBLISH\" \"ch\"")), "{ours:?}");
}

/// With the slow log off, a command's arguments are still kept for a
/// monitor attached (Herald keeps them only if one of the two wants them).
#[test]
fn monitors_see_commands_with_the_slow_log_off() {
    let commands: &[&[&str]] =
        &[&["CONFIG", "SET", "slowlog-log-slower-than", "-1"], &["PUBLISH", "ch", "m"], &["PING"]];
    let (h, r) = (herald(), redis());
    let ours = monitor_transcript(h.port, commands);
    assert_eq!(ours, monitor_transcript(r.port, commands), "Herald (left) and Redis (right)");
    assert!(ours.iter().any(|l| l.contains("\"PUBLISH\" \"ch\" \"m\"")), "{ours:?}");
}

/// A monitor is a client of the normal class: its output limit applies.
#[test]
fn a_monitor_that_does_not_read_is_dropped_at_the_output_limit() {
    let h = herald();
    let mut admin = Conn::open(h.port);
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 256kb 0 0"]);
    let mut monitor = Conn::open(h.port);
    assert_eq!(monitor.cmd(&["MONITOR"]).as_ref(), b"+OK\r\n");
    let payload = "x".repeat(1024);
    let mut p = Conn::open(h.port);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        // Published in batches; the monitor reads nothing, so its lines pile
        // up in the kernel's buffers, then in Herald, up to the limit.
        for _ in 0..500 {
            p.send_cmd(&[b"PUBLISH", b"ch", payload.as_bytes()]);
        }
        for _ in 0..500 {
            p.frame();
        }
        let clients = String::from_utf8_lossy(&admin.cmd(&["CLIENT", "LIST"])).into_owned();
        if !clients.contains("flags=O") {
            break;
        }
        assert!(Instant::now() < deadline, "the monitor was never dropped");
    }
}

fn values(v: &redis::Value) -> Vec<redis::Value> {
    match v {
        redis::Value::Array(items) => items.clone(),
        other => panic!("not an array: {other:?}"),
    }
}

fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

/// The newest SLOWLOG entry's arguments, client address and name.
fn newest_slow_entry(port: u16, setup: &[&[&str]]) -> (Vec<String>, String, String, i64) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    redis::cmd("CONFIG").arg("SET").arg("slowlog-log-slower-than").arg(0).exec(&mut c).unwrap();
    redis::cmd("SLOWLOG").arg("RESET").exec(&mut c).unwrap();
    redis::cmd("CLIENT").arg("SETNAME").arg("slowpoke").exec(&mut c).unwrap();
    for args in setup {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query(&mut c).unwrap();
    }
    let log: redis::Value = redis::cmd("SLOWLOG").arg("GET").arg(1).query(&mut c).unwrap();
    let entry = values(&values(&log)[0]);
    let args = values(&entry[3]).iter().map(text).collect();
    let micros: i64 = text(&entry[2]).parse().unwrap();
    (args, text(&entry[4]), text(&entry[5]), micros)
}

#[test]
fn slowlog_keeps_commands_as_redis_trims_them() {
    let channels: Vec<String> = (0..40).map(|i| format!("ch{i}")).collect();
    let mut numsub: Vec<&str> = vec!["PUBSUB", "NUMSUB"];
    numsub.extend(channels.iter().map(String::as_str));
    let long = "y".repeat(300);
    for setup in [vec![vec!["PUBLISH", "news", "hello"]], vec![numsub.clone()], vec![vec!["ECHO", long.as_str()]]] {
        let setup: Vec<&[&str]> = setup.iter().map(|v| v.as_slice()).collect();
        let (h, r) = (herald(), redis());
        let (ours, our_peer, our_name, micros) = newest_slow_entry(h.port, &setup);
        let (theirs, _, their_name, _) = newest_slow_entry(r.port, &setup);
        assert_eq!(ours, theirs, "Herald (left) and Redis (right)");
        assert_eq!((our_name.as_str(), their_name.as_str()), ("slowpoke", "slowpoke"));
        assert!(our_peer.starts_with("127.0.0.1:") && micros >= 0);
    }
}

/// A PUBLISH's time includes its fan-out: one that takes at least the
/// threshold shows in LATENCY (as `fast-command`, PUBLISH being fast, and
/// as `fan-out`) and in SLOWLOG.
#[test]
fn a_slow_fan_out_shows_in_latency_and_slowlog() {
    let h = herald();
    let mut sub = Conn::open(h.port);
    // 5000 distinct patterns that all match "ch": each publish matches and
    // frames every one of them.
    let patterns: Vec<String> = (0..5000).map(|i| format!("c{}h{}", "*".repeat(i % 70), "*".repeat(i / 70))).collect();
    let mut args: Vec<&[u8]> = vec![b"PSUBSCRIBE"];
    args.extend(patterns.iter().map(|p| p.as_bytes()));
    sub.send_cmd(&args);
    for _ in 0..patterns.len() {
        sub.frame();
    }
    let mut c = Conn::open(h.port);
    // Under a threshold no publish reaches, nothing is recorded.
    c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "600000"]);
    for _ in 0..3 {
        c.cmd(&["PUBLISH", "ch", "x"]);
    }
    assert_eq!(c.cmd(&["LATENCY", "LATEST"]).as_ref(), b"*0\r\n", "spikes under the threshold");
    c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "1000"]);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        c.cmd(&["PUBLISH", "ch", "x"]);
        let latest = String::from_utf8_lossy(&c.cmd(&["LATENCY", "LATEST"])).into_owned();
        if latest.contains("fast-command") && latest.contains("fan-out") {
            // Each event's time is the wall clock's, in seconds.
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            let time: u64 = latest.split("\r\n:").nth(1).and_then(|t| t.parse().ok()).expect("a time");
            assert!(time <= now && now - time < 600, "spike at {time}, now {now}: {latest}");
            let slow = String::from_utf8_lossy(&c.cmd(&["SLOWLOG", "GET"])).into_owned();
            assert!(slow.contains("$7\r\nPUBLISH\r\n$2\r\nch\r\n"), "{slow}");
            let history = String::from_utf8_lossy(&c.cmd(&["LATENCY", "HISTORY", "fan-out"])).into_owned();
            assert!(!history.starts_with("*0") && history.contains("*2\r\n:"), "{history}");
            break;
        }
        assert!(Instant::now() < deadline, "no publish took 1 ms with {} patterns", patterns.len());
    }
    let doctor = String::from_utf8_lossy(&c.cmd(&["LATENCY", "DOCTOR"])).into_owned();
    assert!(doctor.contains("fan-out"), "{doctor}");
    // fast-command and fan-out at least: on a loaded machine any command
    // may take over the 1 ms threshold too (a `command` event).
    let reset = String::from_utf8_lossy(&c.cmd(&["LATENCY", "RESET"])).into_owned();
    assert!(reset.trim_start_matches(':').trim_end().parse::<u32>().unwrap() >= 2, "{reset}");
    assert_eq!(c.cmd(&["LATENCY", "HISTORY", "fan-out"]).as_ref(), b"*0\r\n", "reset");
}

/// A subscriber dropped for its soft limit is a `slow-subscriber-drop`
/// spike as long as it was over that limit.
#[test]
fn a_dropped_slow_subscriber_shows_in_latency() {
    let h = herald_with(herald::Config::default());
    let mut c = Conn::open(h.port);
    c.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
    c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 64kb 1"]);
    let mut stuck = Conn::open(h.port);
    stuck.cmd(&["SUBSCRIBE", "ch"]);
    let payload = vec![b'z'; 16 * 1024];
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        for _ in 0..64 {
            c.send_cmd(&[b"PUBLISH", b"ch", &payload]);
        }
        for _ in 0..64 {
            c.frame();
        }
        let latest = String::from_utf8_lossy(&c.cmd(&["LATENCY", "LATEST"])).into_owned();
        if let Some((_, after)) = latest.split_once("slow-subscriber-drop\r\n") {
            // Its time, latest and highest: at least the soft limit's second.
            let ms: Vec<i64> = after.lines().take(3).filter_map(|l| l.strip_prefix(':')?.trim().parse().ok()).collect();
            assert!(ms.len() == 3 && ms[1] >= 1000 && ms[2] >= ms[1], "{latest}");
            break;
        }
        assert!(Instant::now() < deadline, "the subscriber was never dropped");
    }
}

/// CLIENT PAUSE WRITE holds PUBLISH and SPUBLISH (not PING) until the pause ends; ALL
/// holds everything. Timed on both servers: the held reply comes no sooner
/// than the pause's end.
#[test]
fn client_pause_holds_publishes_until_it_ends() {
    let (h, r) = (herald(), redis());
    for port in [h.port, r.port] {
        let write_held = [("WRITE", &["PUBLISH", "ch", "m"][..]), ("WRITE", &["SPUBLISH", "ch", "m"][..])];
        for (mode, held) in write_held.into_iter().chain([("ALL", &["PING"][..])]) {
            let mut admin = Conn::open(port);
            let mut other = Conn::open(port);
            let started = Instant::now();
            assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "300", mode]).as_ref(), b"+OK\r\n");
            if mode == "WRITE" {
                assert_eq!(other.cmd(&["PING"]).as_ref(), b"+PONG\r\n", "PING is not held by WRITE");
                assert!(started.elapsed() < Duration::from_millis(300), "PING waited for the pause");
            }
            other.cmd(held);
            assert!(started.elapsed() >= Duration::from_millis(290), "{mode}: {held:?} ran during the pause");
        }
    }
}

/// CLIENT UNPAUSE releases the held commands at once.
#[test]
fn client_unpause_releases_held_publishes() {
    let h = herald();
    let mut admin = Conn::open(h.port);
    let mut sub = Conn::open(h.port);
    sub.cmd(&["SUBSCRIBE", "ch"]);
    let mut p = Conn::open(h.port);
    let started = Instant::now();
    admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    p.send_cmd(&[b"PUBLISH", b"ch", b"held"]);
    admin.cmd(&["CLIENT", "UNPAUSE"]);
    assert_eq!(p.frame().as_ref(), b":1\r\n");
    assert!(sub.frame().ends_with(b"$4\r\nheld\r\n"));
    assert!(started.elapsed() < Duration::from_secs(30), "held until the deadline, not the unpause");
}

/// A client blocked in WAIT, or held by CLIENT PAUSE, is still a client:
/// CLIENT LIST shows it at once and CLIENT KILL closes it; a WAIT client
/// that goes away is gone from the list. On both servers. (Herald's held
/// sessions used to stop serving their mailbox: CLIENT LIST hung until the
/// pause ended, for ever behind a `WAIT 1 0`.)
#[test]
fn blocked_and_paused_clients_answer_client_list_and_kill() {
    let (h, r) = (herald(), redis());
    for port in [h.port, r.port] {
        let listed = |admin: &mut Conn| -> Vec<String> {
            let text = String::from_utf8_lossy(&admin.cmd(&["CLIENT", "LIST"])).into_owned();
            text.lines().filter(|l| l.contains("id=")).map(String::from).collect()
        };
        let mut admin = Conn::open(port);
        admin.set_timeout(Duration::from_secs(5));
        // A new client blocked in WAIT, once CLIENT LIST shows it waiting.
        let blocked = |admin: &mut Conn| -> (Conn, String) {
            let mut c = Conn::open(port);
            let id = String::from_utf8_lossy(&c.cmd(&["CLIENT", "ID"])).trim_start_matches(':').trim().to_string();
            c.send_cmd(&[b"WAIT", b"1", b"0"]);
            let deadline = Instant::now() + REPLY_TIMEOUT;
            while !listed(admin).iter().any(|l| l.contains(&format!("id={id} ")) && l.contains("cmd=wait")) {
                assert!(Instant::now() < deadline, "the waiting client never showed in CLIENT LIST");
            }
            (c, id)
        };
        let (mut waiting, id) = blocked(&mut admin);
        assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &id]).as_ref(), b":1\r\n", "port {port}");
        assert!(waiting.read_to_eof().is_empty(), "the killed client got a reply");

        let (gone, _) = blocked(&mut admin);
        drop(gone);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        while listed(&mut admin).len() > 1 {
            assert!(Instant::now() < deadline, "a WAIT client that went away stays listed");
        }

        admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]);
        let mut held = Conn::open(port);
        // One write: once PING is answered the server has the PUBLISH too.
        let both = [support::encode_cmd(&[b"PING"]), support::encode_cmd(&[b"PUBLISH", b"ch", b"m"])].concat();
        held.send(&both);
        assert_eq!(held.frame().as_ref(), b"+PONG\r\n");
        let started = Instant::now();
        assert_eq!(listed(&mut admin).len(), 2, "port {port}");
        assert!(started.elapsed() < Duration::from_secs(5), "CLIENT LIST waited for the pause");
        admin.cmd(&["CLIENT", "UNPAUSE"]);
        assert_eq!(held.frame().as_ref(), b":0\r\n");
    }
}

/// INFO everything on fresh servers: the same sections in the same order,
/// and every field Redis prints is in Herald's section too.
#[test]
fn info_has_every_section_and_field_of_an_empty_redis() {
    let sections = |port: u16| -> Vec<(String, Vec<String>)> {
        let mut c = Conn::open(port);
        let raw = c.cmd(&["INFO", "everything"]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines().skip(1) {
            let line = line.trim_start_matches("txt:");
            if let Some(title) = line.strip_prefix("# ") {
                out.push((title.to_string(), Vec::new()));
            } else if let Some((field, _)) = line.split_once(':') {
                let generated = ["cmdstat_", "errorstat_", "latency_percentiles_usec_"];
                if !generated.iter().any(|g| field.starts_with(g)) {
                    out.last_mut().expect("a section").1.push(field.to_string());
                }
            }
        }
        out
    };
    let (h, r) = (herald(), redis());
    let ours = sections(h.port);
    let theirs = sections(r.port);
    let names = |s: &[(String, Vec<String>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs));
    for ((name, fields), (_, redis_fields)) in ours.iter().zip(&theirs) {
        let herald_only: Vec<&String> = fields.iter().filter(|f| !redis_fields.contains(f)).collect();
        assert!(herald_only.iter().all(|f| f.starts_with("herald_")), "{name}: {herald_only:?}");
        let redis_order: Vec<&String> = fields.iter().filter(|f| !f.starts_with("herald_")).collect();
        assert_eq!(redis_order, redis_fields.iter().collect::<Vec<_>>(), "{name}: fields or their order differ");
    }
}

/// CONFIG RESETSTAT zeroes Commandstats, Errorstats and INFO's counters.
#[test]
fn config_resetstat_zeroes_the_figures() {
    let h = herald();
    let mut c = Conn::open(h.port);
    c.cmd(&["PUBLISH", "ch", "x"]);
    c.cmd(&["NOSUCH"]);
    let before = String::from_utf8_lossy(&c.cmd(&["INFO", "everything"])).into_owned();
    for field in ["cmdstat_publish:calls=1,", "errorstat_ERR:count=1", "herald_published_messages:1\r\n"] {
        assert!(before.contains(field), "{field} in {before}");
    }
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]).as_ref(), b"+OK\r\n");
    let after = String::from_utf8_lossy(&c.cmd(&["INFO", "everything"])).into_owned();
    assert!(!after.contains("cmdstat_publish") && !after.contains("errorstat_"), "{after}");
    assert!(after.contains("cmdstat_config|resetstat:calls=1,") && after.contains("herald_published_messages:0\r\n"));
    assert!(after.contains("total_connections_received:0\r\n"), "{after}");
}

/// TIME and LASTSAVE have no fixed bytes to compare: both servers answer
/// the same shapes, TIME the clock's time and LASTSAVE the start.
#[test]
fn time_and_lastsave_answer_the_clock() {
    let (h, r) = (herald(), redis());
    for port in [h.port, r.port] {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = client.get_connection().unwrap();
        let (secs, micros): (String, String) = redis::cmd("TIME").query(&mut c).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let secs: u64 = secs.parse().unwrap();
        assert!(secs.abs_diff(now) <= 2 && micros.parse::<u32>().unwrap() < 1_000_000);
        let lastsave: u64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
        assert!(lastsave <= now && now - lastsave < 600, "{lastsave} vs {now}");
    }
}

/// INFO stats counts the bytes and calls on client sockets, and its
/// instantaneous rates follow the traffic (Redis' 100 ms samples).
#[test]
fn info_counts_traffic_and_instantaneous_rates() {
    let h = herald();
    let mut c = Conn::open(h.port);
    let field = |info: &str, name: &str| -> f64 {
        let line = info.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name}"));
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    let (mut sent, mut received) = (0usize, 0usize);
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        for _ in 0..100 {
            let request = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
            c.send(request);
            sent += request.len();
            received += c.frame().len();
        }
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "stats"])).into_owned();
        assert!(field(&info, "total_net_input_bytes") >= sent as f64, "{info}");
        assert!(field(&info, "total_net_output_bytes") >= received as f64, "{info}");
        assert!(field(&info, "total_reads_processed") >= 1.0 && field(&info, "total_writes_processed") >= 1.0);
        if field(&info, "instantaneous_ops_per_sec") > 0.0 && field(&info, "instantaneous_input_kbps") > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the rates never moved: {info}");
    }
}

/// Runs `commands` (each on the connection its first element names, 0 or
/// 1) at `port`; the replies are not looked at.
fn run_on_two_connections(port: u16, commands: &[(usize, &[&str])]) {
    let mut conns = [Conn::open(port), Conn::open(port)];
    for (i, args) in commands {
        conns[*i].cmd(args);
    }
}

/// Commandstats count calls, rejections and failures as Redis does: an
/// arity error is a rejected call, an error from a command that ran a
/// failed one, an error inside EXEC a failed call of the command.
#[test]
fn commandstats_count_calls_rejections_and_failures_as_redis_does() {
    let commands: &[(usize, &[&str])] = &[
        (0, &["PUBLISH", "ch", "x"]),
        (0, &["PUBLISH", "ch"]),
        (0, &["CLIENT", "KILL", "1.2.3.4:5"]),
        (0, &["CLIENT", "KILL", "1.2.3.4:5"]),
        (0, &["PUBSUB", "NUMSUB", "ch"]),
        (0, &["MULTI"]),
        (0, &["CLIENT", "KILL", "1.2.3.4:5"]),
        (0, &["PUBLISH", "ch", "y"]),
        (0, &["EXEC"]),
        (0, &["CONFIG", "SET", "maxclients", "-1"]),
    ];
    let counters = |port: u16| -> Vec<String> {
        run_on_two_connections(port, commands);
        let info = String::from_utf8_lossy(&Conn::open(port).cmd(&["INFO", "commandstats"])).into_owned();
        let mut lines: Vec<String> = info
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
            .map(|l| {
                // calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…: times differ.
                let (name, fields) = l.split_once(':').expect("name:fields");
                let kept: Vec<&str> = fields.split(',').filter(|f| !f.starts_with("usec")).collect();
                format!("{name}:{}", kept.join(","))
            })
            .collect();
        lines.sort();
        lines
    };
    let (h, r) = (herald(), redis());
    let ours = counters(h.port);
    assert!(ours.contains(&"cmdstat_client|kill:calls=3,rejected_calls=0,failed_calls=3".to_string()), "{ours:?}");
    assert_eq!(ours, counters(r.port));
}

/// A refusal is logged in ACL LOG as Redis logs it: its reason (command,
/// channel, auth), context (toplevel, or multi inside MULTI), object and
/// user, and repeats are counted in one entry. (The entry's age and
/// client-info differ by nature.)
#[test]
fn acl_log_records_refusals_as_redis_does() {
    let commands: &[(usize, &[&str])] = &[
        (0, &["ACL", "SETUSER", "alice", "on", ">pw", "resetchannels", "&news:*", "+@pubsub", "+multi", "+discard"]),
        (1, &["AUTH", "alice", "pw"]),
        (1, &["PUBLISH", "other", "x"]),
        (1, &["PUBLISH", "other", "x"]),
        (1, &["SUBSCRIBE", "news:1", "secret"]),
        (1, &["PSUBSCRIBE", "*"]),
        (1, &["CLIENT", "LIST"]),
        (1, &["MULTI"]),
        (1, &["PUBLISH", "other", "y"]),
        (1, &["DISCARD"]),
        (1, &["AUTH", "alice", "wrong"]),
        (1, &["AUTH", "nobody", "pw"]),
    ];
    let entries = |port: u16| -> Vec<Vec<String>> {
        run_on_two_connections(port, commands);
        let log = redis::parse_redis_value(&Conn::open(port).cmd(&["ACL", "LOG"])).unwrap();
        values(&log)
            .iter()
            .map(|entry| {
                let fields = values(entry);
                let field = |name: &str| {
                    let at = fields.iter().position(|f| text(f) == name).unwrap_or_else(|| panic!("{name}"));
                    text(&fields[at + 1])
                };
                ["count", "reason", "context", "object", "username"].map(field).to_vec()
            })
            .collect()
    };
    let (h, r) = (herald(), redis());
    let (ours, theirs) = (entries(h.port), entries(r.port));
    assert_eq!(ours, theirs);
    assert!(ours.iter().any(|e| e[1] == "channel" && e[3] == "other" && e[0] == "2"), "{ours:?}");
}

/// Each PUBLISH of a pipelined run is its own SLOWLOG entry, in order, as
/// each pipelined command is in Redis (Herald sends the run off at once:
/// each publish is logged with its share of the run's time).
#[test]
fn slowlog_keeps_each_pipelined_publish_as_redis_does() {
    let logged = |port: u16| -> Vec<Vec<String>> {
        let mut c = Conn::open(port);
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        c.send(b"PUBLISH a 1\r\nPUBLISH b 2\r\nPUBLISH a 3\r\n");
        for _ in 0..3 {
            c.frame();
        }
        // Read on the same raw connection: a client library's own
        // handshake (redis-rs sends CLIENT SETINFO) would be logged too.
        let log = redis::parse_redis_value(&c.cmd(&["SLOWLOG", "GET", "10"])).unwrap();
        values(&log).iter().map(|entry| values(&values(entry)[3]).iter().map(text).collect()).collect()
    };
    let (h, r) = (herald(), redis());
    let ours = logged(h.port);
    assert_eq!(ours.iter().filter(|args| args[0] == "PUBLISH").count(), 3, "{ours:?}");
    assert_eq!(ours, logged(r.port));
}

/// Each publish of a pipelined run is logged with its share of the run's
/// time: together they fit in the time the client waited for the run.
#[test]
fn slowlog_shares_a_pipelined_run_s_time_among_its_publishes() {
    let h = herald();
    let mut c = Conn::open(h.port);
    c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    c.cmd(&["SLOWLOG", "RESET"]);
    let run: Vec<u8> = (0..100).flat_map(|i| format!("PUBLISH ch{} m\r\n", i % 7).into_bytes()).collect();
    let sent = Instant::now();
    c.send(&run);
    for _ in 0..100 {
        c.frame();
    }
    let waited = sent.elapsed().as_micros() as i64;
    let log = redis::parse_redis_value(&c.cmd(&["SLOWLOG", "GET", "200"])).unwrap();
    let micros: Vec<i64> = values(&log)
        .iter()
        .filter(|entry| text(&values(&values(entry)[3])[0]) == "PUBLISH")
        .map(|entry| text(&values(entry)[2]).parse().unwrap())
        .collect();
    assert_eq!(micros.len(), 100);
    assert!(micros.iter().sum::<i64>() <= waited, "logged {micros:?} µs, the client waited {waited} µs");
}
