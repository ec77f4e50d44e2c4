//! Redis' `timeout`: idle clients are closed, subscribers are not.

mod support;

use std::time::Duration;

use herald::Config;
use support::{herald_with, Conn};

#[test]
fn idle_clients_close_subscribers_stay() {
    let h = herald_with(Config { idle_timeout: Duration::from_secs(1), ..Config::default() });
    let mut subscriber = Conn::open(h.port);
    subscriber.cmd(&["SUBSCRIBE", "news"]);
    let mut idle = Conn::open(h.port);
    assert_eq!(idle.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    // Returns when the server closes the idle connection.
    assert!(idle.read_to_eof().is_empty());
    assert_eq!(subscriber.cmd(&["PING"]).as_ref(), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    let mut other = Conn::open(h.port);
    assert_eq!(other.cmd(&["CONFIG", "GET", "timeout"]).as_ref(), b"*2\r\n$7\r\ntimeout\r\n$1\r\n1\r\n");
    assert_eq!(other.cmd(&["PUBLISH", "news", "still here"]).as_ref(), b":1\r\n");
}
