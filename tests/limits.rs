//! Connection limits: `maxclients` refuses extra clients with Redis' error.

mod support;

use herald::Config;
use support::{herald_with, Conn};

#[test]
fn clients_beyond_maxclients_are_refused_and_the_others_keep_working() {
    let h = herald_with(Config { maxclients: 2, ..Config::default() });
    let mut first = Conn::open(h.port);
    let mut second = Conn::open(h.port);
    assert_eq!(first.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    assert_eq!(second.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    let mut third = Conn::open(h.port);
    assert_eq!(third.read_to_eof(), b"-ERR max number of clients reached\r\n");
    assert_eq!(first.cmd(&["CONFIG", "GET", "maxclients"]).as_ref(), b"*2\r\n$10\r\nmaxclients\r\n$1\r\n2\r\n");
    assert_eq!(first.cmd(&["CONFIG", "GET", "tcp-keepalive"]).as_ref(), b"*2\r\n$13\r\ntcp-keepalive\r\n$3\r\n300\r\n");
    // A slot frees up when a client leaves.
    drop(second);
    let mut polls = 0;
    loop {
        let mut again = Conn::open(h.port);
        again.send(b"PING\r\n");
        if again.frame().as_ref() == b"+PONG\r\n" {
            break;
        }
        polls += 1;
        assert!(polls < 10_000, "the freed slot never came back");
    }
}

/// This machine's first non-loopback IPv4 address.
fn outside_address() -> std::net::Ipv4Addr {
    let out = std::process::Command::new("hostname").arg("-I").output().expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
        .expect("a non-loopback IPv4 address to connect from")
}

/// Protected mode, as Redis: no password on the default user means clients
/// not on loopback are refused with DENIED; loopback clients are served,
/// and a password (or `--protected-mode no`) lets the others in.
#[test]
fn protected_mode_refuses_outside_clients_without_a_password() {
    let ip = outside_address();
    let open_to_all = |flags: &[&str]| {
        let port = support::free_port();
        let all = [&["--bind", "0.0.0.0"], flags].concat();
        (support::herald_process_with(port, &all), port)
    };
    let connect = |port: u16| {
        let stream = std::net::TcpStream::connect((ip, port)).expect("connect from outside");
        support::Conn::from_stream(stream)
    };

    let (_h, port) = open_to_all(&[]);
    let mut outside = connect(port);
    let refused = outside.read_to_eof();
    assert!(refused.starts_with(b"-DENIED Redis is running in protected mode"), "{}", support::escape(&refused));
    // Redis' own words, typo included.
    assert!(support::escape(&refused).contains("4) Setup a an authentication password"));
    assert_eq!(Conn::open(port).cmd(&["PING"]).as_ref(), b"+PONG\r\n", "loopback is served");

    let (_h, port) = open_to_all(&["--requirepass", "pw"]);
    let mut outside = connect(port);
    assert_eq!(outside.cmd(&["PING"]).as_ref(), b"-NOAUTH Authentication required.\r\n");
    assert_eq!(outside.cmd(&["AUTH", "pw"]).as_ref(), b"+OK\r\n");

    let (_h, port) = open_to_all(&["--protected-mode", "no"]);
    assert_eq!(connect(port).cmd(&["PING"]).as_ref(), b"+PONG\r\n");
}

/// `maxmemory-clients` (Redis 7): once all clients' queued output passes
/// it, the biggest evictable clients are closed until the rest fit;
/// NO-EVICT clients and small ones stay.
#[test]
fn maxmemory_clients_evicts_the_biggest_clients_first() {
    let h = herald_with(Config::default());
    let mut admin = Conn::open(h.port);
    admin.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 0 0"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "2mb"]);
    let (mut kept, mut big, mut small) = (Conn::open(h.port), Conn::open(h.port), Conn::open(h.port));
    let (kept_id, big_id, small_id) = (kept.client_id(), big.client_id(), small.client_id());
    assert_eq!(kept.cmd(&["CLIENT", "NO-EVICT", "on"]).as_ref(), b"+OK\r\n");
    kept.cmd(&["SUBSCRIBE", "kept"]);
    big.cmd(&["SUBSCRIBE", "big"]);
    small.cmd(&["SUBSCRIBE", "small"]);
    let payload = vec![b'm'; 64 * 1024];
    let mut p = Conn::open(h.port);
    let publish = |p: &mut Conn, channel: &[u8], n: usize| {
        for _ in 0..n {
            p.send_cmd(&[b"PUBLISH", channel, &payload]);
        }
        for _ in 0..n {
            p.frame();
        }
    };
    publish(&mut p, b"small", 1);
    // The NO-EVICT subscriber holds over 1 MiB in Herald (past what the
    // kernel's buffers took), under the limit on its own.
    let deadline = std::time::Instant::now() + support::REPLY_TIMEOUT;
    while admin.omem_of(&kept_id).expect("kept") < 1 << 20 {
        publish(&mut p, b"kept", 4);
        assert!(std::time::Instant::now() < deadline, "the NO-EVICT client never filled up");
    }
    while admin.omem_of(&big_id).is_some() {
        publish(&mut p, b"big", 4);
        assert!(std::time::Instant::now() < deadline, "the biggest client was never evicted");
    }
    assert!(admin.omem_of(&kept_id).is_some(), "a NO-EVICT client was evicted");
    assert!(admin.omem_of(&small_id).is_some(), "a small client was evicted");
    let info = String::from_utf8_lossy(&admin.cmd(&["INFO", "stats"])).into_owned();
    assert!(info.contains("evicted_clients:1\r\n"), "{info}");
    let list = String::from_utf8_lossy(&admin.cmd(&["CLIENT", "LIST"])).into_owned();
    assert!(list.contains(&format!("id={kept_id} ")) && list.contains("flags=Pe "), "{list}");
}
