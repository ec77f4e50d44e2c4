//! Connection limits: `maxclients` refuses extra clients with Redis' error.

mod support;

use herald::config::Config;
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
