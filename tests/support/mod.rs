//! Shared test harness: Herald in-process, redis-server as a child process,
//! a raw RESP connection and a tiny script language for wire transcripts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use herald::Config;

pub mod cluster;
pub mod etcd;

/// Longest any test waits for one reply before failing (a guard, never a
/// stand-in for synchronisation: reads return as soon as bytes arrive).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server {
    pub port: u16,
    child: Option<Child>,
    /// A child's log, read until it closes stdout.
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    /// Kills a server running as a child process, at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a child process").id()
    }

    /// (current, peak) resident bytes of a server running as a child process.
    pub fn rss(&self) -> (u64, u64) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).expect("status field");
            line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("kB") * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits for the child process to exit by itself; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("a child process");
        child.wait().expect("wait").code()
    }

    /// The child's log lines, once it has exited.
    pub fn log_after_exit(&mut self) -> Vec<String> {
        assert!(self.child.is_none(), "wait for the exit first");
        self.log.take().expect("a child's log").join().expect("the log reader")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts Herald on a free port in this process.
pub fn herald() -> Server {
    herald_with(Config::default())
}

pub fn herald_with(config: Config) -> Server {
    herald_on_threads(config, 2)
}

/// Herald with `threads` worker arbiters.
pub fn herald_on_threads(config: Config, threads: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let config = Config { port, ..config };
    // Bound already: connections queue in the backlog until Herald accepts.
    std::thread::spawn(move || herald::run_tcp(listener, config, threads));
    Server { port, child: None, log: None }
}

/// Runs `script` against Herald and a fresh redis-server; the transcripts
/// must be byte-identical (client ids masked).
pub fn same_as_redis(script: &str) {
    let (h, r) = (herald(), redis());
    let ours = normalize(&run_script(h.port, script));
    let theirs = normalize(&run_script(r.port, script));
    assert_eq!(ours, theirs, "Herald (left) and Redis (right) differ");
}

/// A port nothing listens on right now, below Linux' ephemeral range
/// (32768–60999).
///
/// Why not `bind(":0")`: that hands out a port from the ephemeral range,
/// which the kernel also gives to outgoing connections. Between our
/// probe and the child's bind, another test's client (or a cluster
/// node's link) could take it as its local port, and the child would die
/// with "Address already in use" (CI saw exactly that once). Ports
/// 12000–21999 are never used for outgoing connections; a process-wide
/// counter, started at an offset from the pid, keeps this process's
/// handouts distinct, and the bind probe skips ports other processes
/// listen on. Redis' cluster bus (port + 10000) also stays below 32768.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 12000;
    const SPAN: u32 = 10000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    (0..SPAN)
        .map(|_| (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port in 12000-21999")
}

/// One HTTP GET, the whole response.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the first sample of `name` on a Prometheus page.
pub fn metric(text: &str, name: &str) -> f64 {
    let line =
        text.lines().find(|l| l.starts_with(name) && !l.starts_with('#')).unwrap_or_else(|| panic!("{name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Reads the page until every series shows its figure (the sampler copies
/// them once a second), failing if one goes past it or the reply timeout
/// passes first.
pub fn sampled(metrics_port: u16, want: &[(&str, f64)]) {
    let deadline = std::time::Instant::now() + REPLY_TIMEOUT;
    loop {
        let page = http_get(metrics_port, "/metrics");
        let seen: Vec<f64> = want.iter().map(|(name, _)| metric(&page, name)).collect();
        if want.iter().zip(&seen).all(|((_, w), s)| w == s) {
            return;
        }
        for ((name, w), s) in want.iter().zip(&seen) {
            assert!(s <= w, "{name}: {s}, more than the {w} counted");
        }
        // The next sample is at most a second away: each read is a full
        // HTTP round trip, so this asks a few hundred times at most.
        assert!(std::time::Instant::now() < deadline, "the sampler never copied the figures: {seen:?}");
    }
}

/// Starts Debian's redis-server on a free port (installed by scripts/test).
pub fn redis() -> Server {
    redis_on(free_port())
}

pub fn redis_on(port: u16) -> Server {
    redis_with(port, &[])
}

/// redis-server on `port` with extra arguments.
pub fn redis_with(port: u16, extra: &[&str]) -> Server {
    let child = Command::new("redis-server").args(redis_args(port)).args(extra).stdout(Stdio::piped()).spawn();
    let child = child.expect("redis-server not found: run scripts/test, which installs Debian's redis-server");
    started(child, port, "Ready to accept connections")
}

/// redis-server's arguments for a test server on `port`: loopback only,
/// nothing persisted.
pub fn redis_args(port: u16) -> Vec<String> {
    ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(String::from).to_vec()
}

/// Starts the `herald` binary as its own process (so a test can kill and
/// restart it). Only for this package's tests, where Cargo builds it.
pub fn herald_process_on(port: u16) -> Server {
    herald_process_with(port, &[])
}

/// The same, with extra command-line flags.
pub fn herald_process_with(port: u16, flags: &[&str]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["--port", &port.to_string()])
        .args(flags)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("herald binary");
    started(child, port, "ready to accept connections")
}

/// A `herald` child the test spawned itself, once it is ready on `port`.
pub fn started_child(child: Child, port: u16) -> Server {
    started(child, port, "ready to accept connections")
}

/// Waits for `ready` in the child's log (if it dies first, the lines end),
/// then keeps draining the log so it never blocks on a full pipe.
pub fn started(mut child: Child, port: u16, ready: &str) -> Server {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut before = Vec::new();
    let is_ready = lines.by_ref().map_while(Result::ok).any(|l| {
        let ready = l.contains(ready);
        before.push(l);
        ready
    });
    assert!(is_ready, "server on port {port} exited before it was ready: {before:#?}");
    let log = std::thread::spawn(move || before.into_iter().chain(lines.map_while(Result::ok)).collect());
    Server { port, child: Some(child), log: Some(log) }
}

/// A raw client connection that reads whole RESP frames.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        Conn::from_stream(TcpStream::connect(("127.0.0.1", port)).expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream, buf: BytesMut::new() }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write");
    }

    /// Sends a command as a RESP array of bulk strings.
    pub fn send_cmd(&mut self, args: &[&[u8]]) {
        self.send(&encode_cmd(args));
    }

    /// Sends a command and returns its one reply frame.
    pub fn cmd(&mut self, args: &[&str]) -> Bytes {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_cmd(&args);
        self.frame()
    }

    /// The next whole frame, exactly as received.
    pub fn frame(&mut self) -> Bytes {
        self.try_frame().expect("connection closed while waiting for a reply")
    }

    /// How long reads wait before they fail (or `try_frame_within` gives up).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// The next frame, or `None` if the read timeout passes first (or EOF).
    pub fn try_frame_within(&mut self) -> Option<Bytes> {
        loop {
            if let Some(len) = frame_len(&self.buf) {
                return Some(self.buf.split_to(len).freeze());
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next frame, or `None` at EOF.
    pub fn try_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(len) = frame_len(&self.buf) {
                return Some(self.buf.split_to(len).freeze());
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read (timed out?)");
            if n == 0 {
                assert!(self.buf.is_empty(), "EOF inside a frame: {:?}", self.buf);
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// This connection's CLIENT ID.
    pub fn client_id(&mut self) -> String {
        let reply = self.cmd(&["CLIENT", "ID"]);
        String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned()
    }

    /// The `omem` CLIENT LIST shows for client `id`, or `None` once it is
    /// gone.
    pub fn omem_of(&mut self, id: &str) -> Option<u64> {
        let list = String::from_utf8_lossy(&self.cmd(&["CLIENT", "LIST"])).into_owned();
        let line = list.lines().find(|l| l.contains(&format!("id={id} ")))?;
        let field = line.split(' ').find_map(|f| f.strip_prefix("omem="))?;
        Some(field.parse().expect("omem"))
    }

    /// Reads until the server closes; returns everything read. Fails if
    /// the server keeps the connection open past the reply timeout.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        let mut all = self.buf.split().to_vec();
        match self.stream.read_to_end(&mut all) {
            Ok(_) => {}
            // Closed with our unread bytes in its buffer: a reset, still a close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
        all
    }
}

/// Length of the first whole frame in `buf`. RESP3's decoder handles
/// everything but RESP2's `$-1`/`*-1` nulls, which RESP2's decoder takes.
/// The length of the whole RESP2 or RESP3 frame at the front of `buf`, if
/// it is all there. Read by structure, not with redis-protocol's decoder:
/// that one builds RESP3 sets, which cannot hold maps, and Redis' COMMAND
/// INFO sends maps inside sets (key specs).
fn frame_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let number = || -> i64 {
        let text = std::str::from_utf8(&buf[1..line_end]).unwrap_or_else(|_| panic!("invalid RESP: {buf:?}"));
        text.parse().unwrap_or_else(|_| panic!("invalid RESP length {text:?}"))
    };
    let mut at = line_end + 2;
    let items = match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => return Some(at),
        b'$' | b'=' | b'!' => {
            let len = number();
            if len < 0 {
                return Some(at);
            }
            let end = at + len as usize + 2;
            return (buf.len() >= end).then_some(end);
        }
        b'*' | b'~' | b'>' => number(),
        b'%' | b'|' => number() * 2,
        other => panic!("invalid RESP type {:?}: {buf:?}", *other as char),
    };
    for _ in 0..items.max(0) {
        at += frame_len(&buf[at..])?;
    }
    Some(at)
}

pub fn encode_cmd(args: &[&[u8]]) -> Vec<u8> {
    herald_client::encode_command(args)
}

/// Bytes as printable text: `\r\n` kept visible, other controls escaped.
pub fn escape(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Undoes `\r`, `\n`, `\xHH`, `\\` escapes.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 2;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Runs a wire script and returns its transcript.
///
/// Each line is `NAME> …` on connection NAME (opened on first use):
/// `CMD args…` sends a command (args split like redis-cli's, quotes allowed)
/// and reads one reply; `N| CMD args…` reads N; `raw N| bytes` sends escaped
/// raw bytes and reads N frames; `read N` reads N frames; `eof` expects the
/// server to close. Blank lines and `#` comments are skipped.
pub fn run_script(port: u16, script: &str) -> String {
    let mut conns: Vec<(String, Conn)> = Vec::new();
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name, rest) = line.split_once("> ").unwrap_or_else(|| panic!("bad script line {line}"));
        if !conns.iter().any(|(n, _)| n == name) {
            conns.push((name.to_string(), Conn::open(port)));
        }
        let conn = &mut conns.iter_mut().find(|(n, _)| n == name).unwrap().1;
        out.push_str(&format!("{line}\n"));
        if rest == "eof" {
            let rest = conn.read_to_eof();
            out.push_str(&format!("  <- EOF after {:?}\n", escape(&rest)));
            continue;
        }
        if let Some(n) = rest.strip_prefix("read ") {
            for _ in 0..n.parse::<usize>().unwrap() {
                out.push_str(&format!("  <- {}\n", escape(&conn.frame())));
            }
            continue;
        }
        let (raw, body) = match rest.strip_prefix("raw ") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (count, what) = parse_count(body);
        if raw {
            conn.send(&unescape(what));
        } else {
            let args = herald::resp::split_args(what.as_bytes()).expect("script args");
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            conn.send_cmd(&args);
        }
        for _ in 0..count {
            match conn.try_frame() {
                Some(f) => out.push_str(&format!("  <- {}\n", escape(&f))),
                None => out.push_str("  <- EOF\n"),
            }
        }
    }
    out
}

fn parse_count(rest: &str) -> (usize, &str) {
    match rest.split_once("| ") {
        Some((n, what)) if n.chars().all(|c| c.is_ascii_digit()) => (n.parse().unwrap(), what),
        _ => (1, rest),
    }
}

/// Masks what legitimately differs between servers and runs (client ids).
pub fn normalize(transcript: &str) -> String {
    let mut out = String::with_capacity(transcript.len());
    let mut rest = transcript;
    let marker = "$2\\r\\nid\\r\\n:";
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        rest = rest[pos + marker.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("<id>");
    }
    out.push_str(rest);
    out
}
