//! `maxclients` against the open-files limit: Herald and redis-server
//! started under the same `ulimit -n` fit `maxclients` to it alike, refuse
//! a CONFIG SET past it alike and turn the clients past it away alike; and
//! a Herald that runs out of descriptors anyway pauses accepting instead
//! of spinning on the failure.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, started, Conn, Server};

/// `program args…` started under `ulimit -n nofile` (soft and hard).
fn under_ulimit(nofile: u64, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")).arg(program).args(args);
    command.stdout(Stdio::piped());
    command
}

fn herald_under_ulimit(nofile: u64) -> Server {
    let port = free_port();
    let mut command =
        under_ulimit(nofile, env!("CARGO_BIN_EXE_herald"), &["--port", &port.to_string(), "--threads", "1"]);
    started(command.env("RUST_LOG", "info").spawn().expect("herald"), port, "ready to accept connections")
}

fn redis_under_ulimit(nofile: u64) -> Server {
    let port = free_port();
    let args = support::redis_args(port);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    started(
        under_ulimit(nofile, "redis-server", &args).spawn().expect("redis-server"),
        port,
        "Ready to accept connections",
    )
}

/// What a server does under `ulimit -n 64`: its `maxclients`, CONFIG SET
/// past the limit and within it, and the replies of the clients that come
/// after its admin connection, one more than fit.
fn under_a_low_limit(server: &Server) -> Vec<String> {
    let mut admin = Conn::open(server.port);
    let mut seen = Vec::new();
    let mut ask = |c: &mut Conn, args: &[&str]| seen.push(support::escape(&c.cmd(args)));
    ask(&mut admin, &["CONFIG", "GET", "maxclients"]);
    ask(&mut admin, &["CONFIG", "SET", "maxclients", "33"]);
    ask(&mut admin, &["CONFIG", "SET", "maxclients", "1000"]);
    ask(&mut admin, &["CONFIG", "SET", "maxclients", "20"]);
    ask(&mut admin, &["CONFIG", "SET", "maxclients", "32"]);
    ask(&mut admin, &["CONFIG", "GET", "maxclients"]);
    let mut clients: Vec<Conn> = (0..32).map(|_| Conn::open(server.port)).collect();
    for c in &mut clients {
        ask(c, &["PING"]);
    }
    ask(&mut admin, &["PING"]);
    seen
}

#[test]
fn maxclients_fits_the_open_files_limit_as_redis_does() {
    let (mut herald, mut redis) = (herald_under_ulimit(64), redis_under_ulimit(64));
    let (h, r) = (under_a_low_limit(&herald), under_a_low_limit(&redis));
    assert_eq!(h, r, "Herald, then Redis");
    assert_eq!(h[0], "*2\\r\\n$10\\r\\nmaxclients\\r\\n$2\\r\\n32\\r\\n", "64 descriptors less the 32 kept");
    assert_eq!(h.iter().filter(|r| r.starts_with("-ERR max number of clients reached")).count(), 1, "{h:#?}");
    // The warnings, at start and for each CONFIG SET refused, in Redis'
    // words and order.
    herald.kill();
    redis.kill();
    let (h, r) = (herald.log_after_exit(), redis.log_after_exit());
    let about = |l: &str| l.contains("open files") || l.contains("maxclients");
    let told: Vec<&str> =
        r.iter().filter_map(|l| l.split_once(" # ").map(|(_, text)| text)).filter(|t| about(t)).collect();
    assert_eq!(told.len(), 3 + 4 + 4, "Redis' warnings: {r:#?}");
    let herald_told: Vec<&str> = h.iter().filter(|l| about(l)).map(String::as_str).collect();
    assert_eq!(herald_told.len(), told.len(), "{herald_told:#?}");
    for (text, line) in told.iter().zip(&herald_told) {
        assert!(line.contains(text), "Herald logged {line:?} where Redis logged {text:?}");
    }
}

/// Out of descriptors anyway (the limit lowered under the running server),
/// Herald keeps serving its clients and tries to accept again only every
/// so often; once descriptors are back, the client that waited is served.
#[test]
fn accepting_pauses_while_out_of_descriptors() {
    let mut herald = herald_under_ulimit(64);
    let pid = herald.pid() as i32;
    let mut connected = Conn::open(herald.port);
    assert_eq!(connected.cmd(&["PING"]).as_ref(), b"+PONG\r\n", "accepted before the count");
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc fd").count() as u64;
    rlimit::prlimit(pid, rlimit::Resource::NOFILE, Some((open, 64)), None).expect("lower the limit");
    let mut waiting = Conn::open(herald.port);
    waiting.send(b"PING\r\n");
    // Held out of descriptors for a measured while: the accept failures
    // logged meanwhile are the rate checked below. The connected client
    // keeps being served all along.
    let held = Instant::now();
    while held.elapsed() < Duration::from_millis(500) {
        assert_eq!(connected.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    }
    rlimit::prlimit(pid, rlimit::Resource::NOFILE, Some((64, 64)), None).expect("restore the limit");
    let held = held.elapsed();
    assert_eq!(waiting.frame().as_ref(), b"+PONG\r\n", "the client that waited in the backlog");
    herald.kill();
    let log = herald.log_after_exit();
    let failures = log.iter().filter(|l| l.contains("accept failed")).count();
    assert!(failures > 0, "accept never failed: the limit was not reached ({open} descriptors open)");
    // One try per 100-ms pause, and slack for scheduling; without the
    // pause it is tens of thousands.
    let allowed = held.as_millis() as usize / 100 + 3;
    assert!(failures <= allowed, "{failures} accept failures in {held:?}: accepting spins");
}
