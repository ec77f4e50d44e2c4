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
