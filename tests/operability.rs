//! Running Herald: the config file under env and flags, --check-config,
//! CONFIG REWRITE, INFO's figures, the Prometheus endpoint, JSON logs.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{free_port, herald_process_with, http_get, metric, sampled, Conn};

fn temp_conf(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-op-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("herald.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn check_config(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--check-config")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn check_config_accepts_good_files_and_names_the_bad_line() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/herald.conf.example");
    let (ok, text) = check_config(&[example], &[]);
    assert!(ok, "the shipped example is valid: {text}");
    let good = temp_conf("good", "# Herald\nport 0\ntls-port 0\nport 7001\nuser alice on >pw &news:* +@pubsub\n");
    let (ok, text) = check_config(&[good.to_str().unwrap()], &[]);
    assert!(ok && text.contains("configuration OK"), "{text}");

    let bad = temp_conf("bad", "port 7001\ntimeout 10\nfrobnicate yes\n");
    let (ok, text) = check_config(&[bad.to_str().unwrap()], &[]);
    assert!(!ok && text.contains("herald.conf:3: unknown directive 'frobnicate'"), "{text}");

    let bad_user = temp_conf("baduser", "user bob on +nosuch\n");
    let (ok, text) = check_config(&[bad_user.to_str().unwrap()], &[]);
    assert!(!ok && text.contains("Unknown command or category name in ACL"), "{text}");

    let (ok, text) = check_config(&["--timeout", "soon"], &[]);
    assert!(!ok && text.contains("--timeout") && text.contains("integer"), "{text}");
    let (ok, text) = check_config(&["--tls-port", "7444"], &[]);
    assert!(!ok && text.contains("tls-cert-file"), "{text}");
    let (ok, text) = check_config(&[], &[("HERALD_MAXCLIENTS", "zero")]);
    assert!(!ok && text.contains("maxclients"), "{text}");

    // Cluster settings are checked before anything listens.
    let nodes = "127.0.0.1:7001,127.0.0.1:7002";
    let (ok, text) = check_config(&["--port", "7001", "--cluster-nodes", nodes], &[]);
    assert!(ok, "{text}");
    let (ok, text) = check_config(&["--port", "7009", "--cluster-nodes", nodes], &[]);
    assert!(!ok && text.contains("127.0.0.1:7009 is not in the cluster's node list"), "{text}");
    let lone = temp_conf("lone", "port 7001\ncluster-nodes 127.0.0.1:7001\n");
    let (ok, text) = check_config(&[lone.to_str().unwrap()], &[]);
    assert!(!ok && text.contains("cluster-nodes and cluster-etcd need cluster-enabled yes"), "{text}");
    // On etcd: one source of membership, a lease of 2 s at least, and a
    // build with the etcd feature.
    let (ok, text) =
        check_config(&["--port", "7001", "--cluster-etcd", "127.0.0.1:2379", "--cluster-nodes", nodes], &[]);
    assert!(!ok && text.contains("either cluster-nodes"), "{text}");
    let (ok, text) =
        check_config(&["--port", "7001", "--cluster-etcd", "127.0.0.1:2379", "--cluster-lease-ttl", "1"], &[]);
    assert!(!ok && text.contains("between 2 and 3600 seconds"), "{text}");
    let (ok, text) = check_config(&["--port", "7001", "--cluster-etcd", "127.0.0.1:2379"], &[]);
    match cfg!(feature = "etcd") {
        true => assert!(ok, "{text}"),
        false => assert!(!ok && text.contains("--features etcd"), "{text}"),
    }
    let twice = temp_conf(
        "twice",
        "port 7001\ncluster-enabled yes\ncluster-nodes 127.0.0.1:7001,127.0.0.1:7002\n\
         cluster-slots 127.0.0.1:7001 0-16383\ncluster-slots 127.0.0.1:7002 5\n",
    );
    let (ok, text) = check_config(&[twice.to_str().unwrap()], &[]);
    assert!(!ok && text.contains("slot 5 is assigned twice"), "{text}");
}

#[test]
fn file_then_environment_then_flags_and_config_rewrite() {
    let port = free_port();
    let conf =
        temp_conf("layers", &format!("# kept\nport {}\ntimeout 100\nmaxclients 50\ntcp-keepalive 60\n", free_port()));
    // The file's port is overridden by the flag; its maxclients by the variable.
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([conf.to_str().unwrap(), "--port", &port.to_string(), "--timeout", "7"])
        .env("HERALD_MAXCLIENTS", "60")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _h = support::started_child(child, port);
    let mut c = Conn::open(port);
    let got = String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", "*"])).into_owned();
    for expected in ["timeout\r\n$1\r\n7\r\n", "maxclients\r\n$2\r\n60\r\n", "tcp-keepalive\r\n$2\r\n60\r\n"] {
        assert!(got.contains(expected), "{expected:?} in {got:?}");
    }
    assert_eq!(c.cmd(&["CONFIG", "SET", "timeout", "9", "requirepass", "sekrit"]).as_ref(), b"+OK\r\n");
    // Redis parameters Herald only keeps are written back too, as set.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1gb", "appendfsync", "ALWAYS"]).as_ref(), b"+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "SETUSER", "reader", "on", ">r", "&feed", "+subscribe"]).as_ref(), b"+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]).as_ref(), b"+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# kept\nport "), "{text}");
    for line in [
        "timeout 9",
        "maxclients 60",
        "requirepass sekrit",
        "user reader on #",
        "maxmemory 1073741824",
        "appendfsync always",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    let (ok, out) = check_config(&[conf.to_str().unwrap()], &[]);
    assert!(ok, "the rewritten file is valid: {out}");
}

#[test]
fn config_rewrite_without_a_file_is_refused() {
    let h = herald_process_with(free_port(), &[]);
    let mut c = Conn::open(h.port);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]).as_ref(), b"-ERR The server is running without a config file\r\n");
}

#[test]
fn info_and_prometheus_count_publishes_and_deliveries() {
    let metrics_port = free_port();
    let h = herald_process_with(free_port(), &["--metrics-port", &metrics_port.to_string(), "--log-json"]);
    let mut sub = Conn::open(h.port);
    sub.cmd(&["SUBSCRIBE", "m"]);
    let mut sub2 = Conn::open(h.port);
    sub2.cmd(&["PSUBSCRIBE", "m*"]);
    let mut p = Conn::open(h.port);
    for _ in 0..25 {
        assert_eq!(p.cmd(&["PUBLISH", "m", "x"]).as_ref(), b":2\r\n");
    }
    p.cmd(&["PUBLISH", "nobody", "x"]);
    let info = String::from_utf8_lossy(&p.cmd(&["INFO"])).into_owned();
    for field in ["herald_published_messages:26\r\n", "herald_delivered_messages:50\r\n", "# CPU\r\nused_cpu_sys:"] {
        assert!(info.contains(field), "{field:?} in {info}");
    }
    // The histogram is recorded as publishes finish; the counters are
    // copied from the census once a second.
    let page = http_get(metrics_port, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert_eq!(metric(&page, "herald_publish_enqueue_seconds_count"), 26.0);
    assert!(page.contains("herald_publish_enqueue_seconds_bucket{le=\"0.001\"}"), "{page}");
    sampled(metrics_port, &[("herald_published_messages_total", 26.0), ("herald_delivered_messages_total", 50.0)]);
}

/// A fresh server's page already lists every series (counters at 0), each
/// with HELP; once commands ran, the per-command series agree with INFO
/// Commandstats (the sampler copies them once a second, so the test reads
/// until they arrive, within the reply timeout).
#[test]
fn prometheus_lists_every_metric_from_the_start_and_agrees_with_info() {
    let metrics_port = free_port();
    let h = herald_process_with(free_port(), &["--metrics-port", &metrics_port.to_string()]);
    let page = http_get(metrics_port, "/metrics");
    for name in [
        "herald_published_messages_total",
        "herald_delivered_messages_total",
        "herald_dropped_slow_subscribers_total",
        "herald_evicted_clients_total",
        "herald_connected_clients",
        "herald_channel_actors",
        "herald_pattern_subscriptions",
        "herald_output_queued_bytes",
        "herald_monitors",
        "herald_commands_total{cmd=\"publish\"}",
        "herald_commands_total{cmd=\"client|list\"}",
        "herald_command_duration_microseconds_total{cmd=\"subscribe\"}",
        "herald_commands_rejected_total{cmd=\"publish\"}",
        "herald_commands_failed_total{cmd=\"publish\"}",
        "herald_command_latency_microseconds{cmd=\"publish\",quantile=\"0.99\"}",
        "herald_error_replies_total{code=\"ERR\"}",
    ] {
        assert_eq!(metric(&page, name), 0.0, "{name} at start");
    }
    assert!(page.contains("herald_build_info{version=\""), "{page}");
    let body = page.split_once("\r\n\r\n").expect("an HTTP body").1;
    let described: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("# HELP ")).collect();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let family = line.split(['{', ' ']).next().unwrap();
        let family = family.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
        assert!(described.iter().any(|d| d.starts_with(&format!("{family} "))), "{family} has no HELP");
    }

    let mut c = Conn::open(h.port);
    for _ in 0..7 {
        c.cmd(&["PUBLISH", "ch", "x"]);
    }
    c.cmd(&["PUBLISH", "ch"]);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "commandstats"])).into_owned();
    assert!(info.contains("cmdstat_publish:calls=7,"), "{info}");
    assert!(info.contains("rejected_calls=1,failed_calls=0"), "{info}");
    sampled(
        metrics_port,
        &[
            ("herald_commands_total{cmd=\"publish\"}", 7.0),
            ("herald_commands_rejected_total{cmd=\"publish\"}", 1.0),
            ("herald_error_replies_total{code=\"ERR\"}", 1.0),
        ],
    );
    let page = http_get(metrics_port, "/metrics");
    assert!(metric(&page, "herald_command_latency_microseconds{cmd=\"publish\",quantile=\"0.5\"}") > 0.0);
}

/// The redis.conf Debian's redis-server package installs (scripts/test
/// installs it) loads unchanged: several `bind` addresses with Redis'
/// optional `-` prefix, and every directive a broker has no use for
/// accepted, reported once at start, and shown back by CONFIG GET.
#[test]
fn a_stock_redis_conf_loads_unchanged() {
    let stock = "/etc/redis/redis.conf";
    assert!(std::path::Path::new(stock).exists(), "{stock} is missing: scripts/test installs redis-server");
    let (ok, text) = check_config(&[stock], &[]);
    assert!(ok && text.contains("configuration OK"), "{text}");
    assert!(text.contains("ignored") && text.contains("daemonize"), "the ignored directives are reported: {text}");

    let h = herald_process_with(free_port(), &[stock]);
    let mut c = Conn::open(h.port);
    let get = |c: &mut Conn, name: &str| String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", name])).into_owned();
    assert!(get(&mut c, "bind").contains("127.0.0.1 -::1"));
    assert!(get(&mut c, "daemonize").ends_with("$3\r\nyes\r\n"), "as the file says");
    assert!(get(&mut c, "hash-max-listpack-entries").ends_with("$3\r\n512\r\n"), "a Redis default");
    assert!(get(&mut c, "logfile").contains("/var/log/redis/redis-server.log"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "lfu-log-factor", "12"]).as_ref(), b"+OK\r\n");
    assert!(get(&mut c, "lfu-log-factor").ends_with("$2\r\n12\r\n"));
    // Every parameter an empty Redis 7.0.15 lists is there.
    let all = c.cmd(&["CONFIG", "GET", "*"]);
    let count: usize = String::from_utf8_lossy(&all[1..all.iter().position(|b| *b == b'\r').unwrap()]).parse().unwrap();
    assert!(count / 2 >= 192, "{} parameters", count / 2);
}

/// `-addr` that cannot be bound is skipped; a plain one that cannot be
/// bound is an error.
#[test]
fn bind_takes_several_addresses_and_optional_ones() {
    let port = free_port();
    let h = herald_process_with(port, &["--bind", "127.0.0.1 -192.0.2.1 127.0.0.2"]);
    for host in ["127.0.0.1", "127.0.0.2"] {
        let stream = std::net::TcpStream::connect((host, h.port)).expect(host);
        let mut c = Conn::from_stream(stream);
        assert_eq!(c.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1 192.0.2.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && text.contains("192.0.2.1"), "{text}");
}
