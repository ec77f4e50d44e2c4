//! CONFIG SET and CONFIG GET of every Redis 7.0.15 parameter, wire-compared
//! with a redis-server started here (SPEC §1.9): each parameter is set to
//! the same values on both servers; the replies, and what CONFIG GET then
//! shows for every parameter, must be the same.

mod support;

use std::collections::BTreeMap;

use support::{free_port, herald, redis_with, Conn};

/// Settings Herald takes at start only (its listeners, TLS context and
/// cluster links are built then), where Redis can change them while it
/// runs: Herald refuses them with Redis' immutable-config error
/// (`herald_refuses_what_it_takes_at_start_only`).
const START_ONLY_IN_HERALD: &[&str] = &[
    "port",
    "bind",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "cluster-announce-ip",
    "cluster-node-timeout",
    "cluster-link-sendbuf-limit",
];

/// Parameters set here but shown differently, on purpose: Herald persists
/// nothing (`save` shows "" and `appendonly` "no" whatever was set), and
/// `dir` is each process' own working directory.
const SHOWN_AS_HERALD_DOES: &[&str] = &["save", "appendonly", "dir"];

/// Values every parameter is set to: each kind's edge cases (string2ll's
/// and memtoull's quirks, bounds, case) and each special parameter's forms.
const VALUES: &[&str] = &[
    "abc",
    "yes",
    "NO",
    "Yes",
    "0",
    "1",
    "2",
    "-1",
    "-2",
    "007",
    "+5",
    "-0",
    "",
    " 5",
    "5 ",
    "1kb",
    "2MB",
    "1g",
    "1B",
    "kb",
    "1tb",
    "100",
    "101",
    "500",
    "1000",
    "65535",
    "65536",
    "1048576",
    "4294967295",
    "4294967296",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "99999999999999999999999",
    "99999999999999999999999kb", // enums, any case
    "EVERYSEC",
    "always",
    "allkeys-LRU",
    "warning",
    "clients",
    "hostname",
    "optional",
    "relative",
    "panic",
    "on-empty-db",
    "nosave",
    "allchannels", // notify-keyspace-events
    "KEA",
    "Exg",
    "g$lshzxetd",
    "nAm",
    "Kq",
    "$", // latency-tracking-info-percentiles
    "50 99",
    "50  99",
    "0.5 100",
    "inf",
    "1e2",
    "nan",
    "99.9999999", // oom-score-adj-values
    "0 200 800",
    "1 2",
    "-2001 0 0",
    "+5 007 2000",
    "a b c",
    "1 2 3 ", // save
    "3600 1 300 100",
    "0 1",
    "5 -1", // client-output-buffer-limit
    "pubsub 1mb 512kb 10",
    "normal 1mb 2mb 3 replica 4 5 6",
    "master 1 1 1",
    "pubsub 1 2",
    "pubsub 1 2 x",
    "pubsub 1tb 1 1",
    "PUBSUB 1 1 -1",
    "slave 0 0 0 pubsub 8 8 8 ", // maxmemory-clients
    "5%",
    "100%",
    "101%",
    "x%",
    "-1%",
];

fn strings(frame: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(frame);
    let mut lines = text.split("\r\n");
    let count: usize = lines.next().and_then(|l| l.strip_prefix('*')).expect("an array").parse().unwrap();
    (0..count)
        .map(|_| {
            let _length = lines.next();
            lines.next().unwrap().to_string()
        })
        .collect()
}

/// A command's reply; a connection closed on it names the command.
fn ask(conn: &mut Conn, args: &[&str], server: &str) -> Vec<u8> {
    let raw: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.send_cmd(&raw);
    let reply = conn.try_frame();
    reply.unwrap_or_else(|| panic!("{server} closed the connection on {args:?}")).to_vec()
}

fn config(conn: &mut Conn) -> BTreeMap<String, String> {
    let flat = strings(&conn.cmd(&["CONFIG", "GET", "*"]));
    flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()
}

/// What both servers show of the parameters compared here.
fn shown(conn: &mut Conn, names: &[String]) -> Vec<(String, String)> {
    let all = config(conn);
    names.iter().map(|n| (n.clone(), all.get(n).cloned().unwrap_or_else(|| format!("<{n} missing>")))).collect()
}

#[test]
fn every_parameter_is_set_and_shown_as_redis_does() {
    let dir = std::env::temp_dir().join(format!("herald-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = redis_with(free_port(), &["--dir", dir.to_str().unwrap()]);
    let h = herald();
    let (mut ours, mut theirs) = (Conn::open(h.port), Conn::open(r.port));
    let defaults = config(&mut theirs);
    let names: Vec<String> = defaults
        .keys()
        .filter(|n| !START_ONLY_IN_HERALD.contains(&n.as_str()) && *n != "requirepass")
        .cloned()
        .collect();
    let compared: Vec<String> = names.iter().filter(|n| !SHOWN_AS_HERALD_DOES.contains(&n.as_str())).cloned().collect();
    assert_eq!(shown(&mut ours, &compared), shown(&mut theirs, &compared), "defaults differ");
    let mut differences = Vec::new();
    let mut accepted = 0;
    for name in &names {
        for value in VALUES {
            // Debian's redis-server is built without jemalloc, so its
            // refusal to turn active defragmentation on is its build's.
            if name == "activedefrag" && value.eq_ignore_ascii_case("yes") {
                continue;
            }
            // Above its open-files limit, Redis raises the limit or refuses
            // with what it managed; Herald leaves the limit to the operator.
            if name == "maxclients" && value.parse::<u64>().is_ok_and(|n| n > 10_000) {
                continue;
            }
            let set = ["CONFIG", "SET", name, value];
            let (a, b) = (ask(&mut ours, &set, "Herald"), ask(&mut theirs, &set, "Redis"));
            if a != b {
                let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
                differences.push(format!("CONFIG SET {name} {value:?}: Herald {a:?}, Redis {b:?}"));
            }
            if b.starts_with(b"+") {
                accepted += 1;
                let (a, b) = (shown(&mut ours, &compared), shown(&mut theirs, &compared));
                for ((n, ours), (_, theirs)) in a.iter().zip(&b).filter(|(a, b)| a != b) {
                    differences
                        .push(format!("after CONFIG SET {name} {value:?}, {n}: Herald {ours:?}, Redis {theirs:?}"));
                }
            }
            let restore = ["CONFIG", "SET", name, &defaults[name]];
            let (a, b) = (ours.cmd(&restore), theirs.cmd(&restore));
            assert_eq!(a, b, "restoring {name}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
    // The sweep must have set something of every kind, not only refused.
    assert!(accepted > 500, "only {accepted} values accepted");
}

/// Redis' order of refusals in one CONFIG SET: the first unknown, start-only
/// or repeated name wins over any value; values are checked after names,
/// in order; an alias is a name of its own.
#[test]
fn refusals_come_in_redis_order() {
    support::same_as_redis(
        "
        c> CONFIG SET hz abc nope 1
        c> CONFIG SET daemonize no nope 1
        c> CONFIG SET nope 1 daemonize no
        c> CONFIG SET hz abc daemonize no
        c> CONFIG SET hz 5 maxmemory abc
        c> CONFIG GET hz
        c> CONFIG SET hz 1 hz 2
        c> CONFIG SET replica-priority 1 slave-priority 2
        c> CONFIG GET replica-priority
        c> CONFIG GET slave-priority
        c> CONFIG SET dir /tmp
        c> CONFIG SET dbfilename x.rdb
        c> CONFIG SET lua-time-limit abc
        c> CONFIG SET hz
        ",
    );
}

#[test]
fn herald_refuses_what_it_takes_at_start_only() {
    let h = herald();
    let mut conn = Conn::open(h.port);
    for name in START_ONLY_IN_HERALD {
        let reply = conn.cmd(&["CONFIG", "SET", name, "1"]);
        let want =
            format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config\r\n");
        assert_eq!(String::from_utf8_lossy(&reply), want);
    }
}

/// Why `redis-server` refuses to start with the config line `name value`,
/// or `None` if the line passes (it is started with no listener, so it
/// exits either way; `timeout` guards a line that makes it listen).
fn redis_refusal(dir: &std::path::Path, name: &str, value: &str) -> Option<String> {
    let out = std::process::Command::new("timeout")
        .args(["5", "redis-server", "--port", "0", &format!("--{name}"), value])
        .current_dir(dir)
        .output()
        .expect("redis-server");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.contains("FATAL CONFIG FILE ERROR").then(|| text.trim_end().lines().last().unwrap_or("").to_string())
}

/// Why `herald --check-config` refuses a file holding the line, or `None`.
fn herald_refusal(dir: &std::path::Path, name: &str, value: &str) -> Option<String> {
    let file = dir.join("herald.conf");
    std::fs::write(&file, format!("{name} \"{value}\"\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--check-config")
        .arg(&file)
        .current_dir(dir)
        .output()
        .expect("herald");
    if out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let why = text.split_once(") - ").map_or(text.as_str(), |(_, why)| why);
    Some(why.split(" (>>> ").next().unwrap_or(why).trim().to_string())
}

/// A config file's line for a start-only or protected parameter (which
/// CONFIG SET refuses outright) is checked as Redis checks it when it
/// reads its file: Herald refuses to start with what Redis refuses, for
/// the same reason, and takes what Redis takes.
#[test]
fn config_files_are_checked_as_redis_checks_them() {
    let table = include_str!("../src/config/redis-7.0.15-params.txt");
    let names: Vec<&str> = table
        .lines()
        .filter(|l| l.contains(" immutable ") || l.contains(" protected "))
        .map(|l| l.split(' ').next().unwrap())
        // Any path starts a listener there (so Redis never exits), and
        // the ACL file's contents are checked when it is loaded. `dir` and
        // `logfile` Redis opens as it starts; Herald writes nothing there,
        // and a stock redis.conf names paths only the redis user may open,
        // so it takes any path (SPEC 1.12).
        .filter(|n| !["unixsocket", "aclfile", "dir", "logfile"].contains(n))
        .collect();
    assert!(names.len() > 30, "{names:?}");
    let dir = std::env::temp_dir().join(format!("herald-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values = ["abc", "-1", "0", "1", "99999999999", "no", "local", "077", "user", "-0"];
    let mut differences = Vec::new();
    let mut refused = 0;
    for name in &names {
        for value in values {
            let (h, r) = (herald_refusal(&dir, name, value), redis_refusal(&dir, name, value));
            refused += r.is_some() as usize;
            if h != r {
                differences.push(format!("{name} {value:?}: Herald {h:?}, Redis {r:?}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
    assert!(refused > names.len(), "Redis refused only {refused} lines: the probe is not reaching it");
}
