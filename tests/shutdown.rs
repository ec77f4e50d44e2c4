//! Graceful shutdown (SPEC §7): SIGTERM, SIGINT or SHUTDOWN stop accepting,
//! flush what is queued to subscribers, close, and exit 0.

mod support;

use std::net::TcpStream;
use std::process::Command;

use support::{free_port, herald_process_on, Conn, Server};

/// A subscriber that has not read yet, with `n` messages queued for it.
fn subscriber_with_queued(h: &Server, n: usize) -> Conn {
    let mut sub = Conn::open(h.port);
    sub.cmd(&["SUBSCRIBE", "news"]);
    let mut publisher = Conn::open(h.port);
    let payload = "p".repeat(16 * 1024);
    for i in 0..n {
        let reply = publisher.cmd(&["PUBLISH", "news", &format!("{i:04}{payload}")]);
        assert_eq!(reply.as_ref(), b":1\r\n");
    }
    sub
}

/// Reads the `n` messages in order, then expects the close.
fn drains_then_eof(mut sub: Conn, n: usize) {
    for i in 0..n {
        let frame = sub.frame();
        let at = frame.len() - 2 - 16 * 1024 - 4;
        assert_eq!(&frame[at..at + 4], format!("{i:04}").as_bytes(), "message {i}");
    }
    assert!(sub.try_frame().is_none(), "closed after the queued messages");
}

/// Bytes Herald holds for its clients, not yet written (INFO).
fn queued_inside(h: &Server) -> u64 {
    let info = String::from_utf8_lossy(&Conn::open(h.port).cmd(&["INFO", "stats"])).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix("herald_output_bytes_queued:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn stops_on_signal(signal: &str) {
    let mut h = herald_process_on(free_port());
    let sub = subscriber_with_queued(&h, 200);
    let status = Command::new("kill").args([signal, &h.pid().to_string()]).status().expect("kill");
    assert!(status.success());
    drains_then_eof(sub, 200);
    assert_eq!(h.wait_exit(), Some(0));
    assert!(TcpStream::connect(("127.0.0.1", h.port)).is_err(), "no longer accepting");
}

#[test]
fn sigterm_flushes_subscribers_and_exits_zero() {
    stops_on_signal("-TERM");
}

#[test]
fn sigint_flushes_subscribers_and_exits_zero() {
    stops_on_signal("-INT");
}

#[test]
fn shutdown_command_flushes_subscribers_and_exits_zero() {
    let mut h = herald_process_on(free_port());
    let sub = subscriber_with_queued(&h, 200);
    let mut admin = Conn::open(h.port);
    assert_eq!(admin.cmd(&["SHUTDOWN", "ABORT"]).as_ref(), b"-ERR No shutdown in progress.\r\n");
    assert_eq!(admin.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"]).as_ref(), b"-ERR syntax error\r\n");
    admin.send(b"SHUTDOWN NOSAVE\r\n");
    assert!(admin.read_to_eof().is_empty(), "no reply, as Redis");
    drains_then_eof(sub, 200);
    assert_eq!(h.wait_exit(), Some(0));
}

/// The drain with output really queued inside Herald at the signal (not
/// only in the kernel's socket buffers): 1200 × 16 KiB is about 19 MiB,
/// past what loopback buffers hold and under the default 32 MiB limit.
#[test]
fn sigterm_drains_output_queued_inside_herald() {
    let mut h = herald_process_on(free_port());
    let sub = subscriber_with_queued(&h, 1200);
    let queued = queued_inside(&h);
    assert!(queued > 4 << 20, "only {queued} bytes queued inside Herald: the kernel took the rest");
    let status = Command::new("kill").args(["-TERM", &h.pid().to_string()]).status().expect("kill");
    assert!(status.success());
    drains_then_eof(sub, 1200);
    assert_eq!(h.wait_exit(), Some(0));
    // It exited because everything was written, not at the deadline.
    let log = h.log_after_exit();
    assert!(log.iter().any(|l| l.contains("ready to exit")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("shutdown deadline passed")), "{log:#?}");
}
