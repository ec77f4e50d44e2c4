//! One blocking RESP connection to the server under test: commands out,
//! frames in (decoded, with their exact bytes), every read bounded by a
//! timeout so a server that never answers fails a check instead of
//! hanging the kit.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use herald_client::Value;

use crate::Target;

/// How long a reply may take before the check fails. Generous: the kit
/// judges behaviour, not speed, and CI machines stall.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame as decoded, and its bytes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) value: Value,
    pub(crate) raw: Vec<u8>,
}

impl Frame {
    pub(crate) fn text(&self) -> String {
        self.raw.escape_ascii().to_string()
    }
}

trait Io: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

pub(crate) struct Conn {
    io: Box<dyn Io>,
    buf: BytesMut,
    resp3: bool,
}

impl Conn {
    /// A connection authenticated as the target's user (if any).
    pub(crate) fn open(target: &Target) -> Result<Conn, String> {
        let mut conn = Conn::unauthenticated(target)?;
        conn.authenticate(target)?;
        Ok(conn)
    }

    /// A connection that has sent nothing yet.
    pub(crate) fn unauthenticated(target: &Target) -> Result<Conn, String> {
        let tcp = TcpStream::connect(&target.addr).map_err(|e| format!("connect {}: {e}", target.addr))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Conn::over(tcp, target.tls.as_ref())
    }

    /// A connection with a small receive buffer, for a subscriber that is
    /// meant to fall behind without megabytes parked in the kernel.
    pub(crate) fn small_window(target: &Target) -> Result<Conn, String> {
        let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&target.addr)
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)
            .map_err(|e| e.to_string())?;
        socket.set_recv_buffer_size(16 * 1024).map_err(|e| e.to_string())?;
        socket.connect(&addr.into()).map_err(|e| format!("connect {addr}: {e}"))?;
        let mut conn = Conn::over(socket.into(), target.tls.as_ref())?;
        conn.authenticate(target)?;
        Ok(conn)
    }

    /// AUTH with the target's credentials, if it has any.
    pub(crate) fn authenticate(&mut self, target: &Target) -> Result<(), String> {
        match target.auth() {
            Some(auth) => self.expect_ok(&auth),
            None => Ok(()),
        }
    }

    fn over(tcp: TcpStream, tls: Option<&crate::Tls>) -> Result<Conn, String> {
        tcp.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
        let io: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(tls) => {
                let session = rustls::ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(rustls::StreamOwned::new(session, tcp))
            }
        };
        Ok(Conn { io, buf: BytesMut::new(), resp3: false })
    }

    /// Switches to RESP3 (`HELLO 3`), checking the server agreed.
    pub(crate) fn hello3(&mut self) -> Result<(), String> {
        self.resp3 = true;
        let reply = self.call(&["HELLO", "3"])?;
        if !matches!(reply.value, Value::Map(_)) {
            return Err(format!("HELLO 3 answered {}", reply.text()));
        }
        self.resp3 = true;
        Ok(())
    }

    pub(crate) fn send(&mut self, args: &[&str]) -> Result<(), String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_bytes(&args)
    }

    pub(crate) fn send_bytes(&mut self, args: &[&[u8]]) -> Result<(), String> {
        self.write(&herald_client::encode_command(args))
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io.write_all(bytes).and_then(|_| self.io.flush()).map_err(|e| format!("write: {e}"))
    }

    /// Sends a command and reads one frame.
    pub(crate) fn call(&mut self, args: &[&str]) -> Result<Frame, String> {
        self.send(args)?;
        self.read()
    }

    pub(crate) fn expect_ok(&mut self, args: &[&str]) -> Result<(), String> {
        let reply = self.call(args)?;
        match reply.value {
            Value::Simple(s) if s == "OK" => Ok(()),
            _ => Err(format!("{} answered {}", args.join(" "), reply.text())),
        }
    }

    /// The next frame, or an error if none comes within the timeout.
    pub(crate) fn read(&mut self) -> Result<Frame, String> {
        self.read_within(REPLY_TIMEOUT)?.ok_or_else(|| "no reply within the timeout".to_string())
    }

    /// The next frame if one arrives within `wait` (`None` if not); an
    /// error if the connection closes.
    pub(crate) fn read_within(&mut self, wait: Duration) -> Result<Option<Frame>, String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(frame) = self.decode()? {
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.fill(left)? {
                Filled::Some => {}
                Filled::Eof => return Err("connection closed".into()),
                Filled::Timeout => return Ok(None),
            }
        }
    }

    /// Whether the server closes the connection within the timeout with
    /// nothing more sent; what it sent before closing is returned.
    pub(crate) fn closes(&mut self) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.fill(left.max(Duration::from_millis(1)))? {
                Filled::Eof => return Ok(self.buf.split().to_vec()),
                Filled::Some => {}
                Filled::Timeout => {
                    return Err(format!("still open after {REPLY_TIMEOUT:?}; sent {}", self.buf.escape_ascii()))
                }
            }
        }
    }

    /// Closes the sending side only (the server may still answer).
    pub(crate) fn shutdown_write(&self) -> Result<(), String> {
        self.io.tcp().shutdown(Shutdown::Write).map_err(|e| e.to_string())
    }

    /// Drops the connection with a reset (SO_LINGER 0), the way a crashed
    /// client's kernel does.
    pub(crate) fn reset(self) {
        let socket = socket2::SockRef::from(self.io.tcp());
        let _ = socket.set_linger(Some(Duration::ZERO));
    }

    fn fill(&mut self, wait: Duration) -> Result<Filled, String> {
        self.io.tcp().set_read_timeout(Some(wait.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 64 * 1024];
        match self.io.read(&mut chunk) {
            Ok(0) => Ok(Filled::Eof),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(Filled::Some)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(Filled::Timeout),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => Ok(Filled::Eof),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(Filled::Eof),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn decode(&mut self) -> Result<Option<Frame>, String> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let before = self.buf.clone();
        // A status or error line is any bytes up to CRLF (Redis echoes
        // non-UTF-8 names raw); redis-protocol wants UTF-8 there.
        if matches!(before[0], b'+' | b'-') {
            let Some(end) = before.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
            let line = String::from_utf8_lossy(&before[1..end]).into_owned();
            let _ = self.buf.split_to(end + 2);
            let value = if before[0] == b'+' { Value::Simple(line) } else { Value::Error(line) };
            return Ok(Some(Frame { value, raw: before[..end + 2].to_vec() }));
        }
        let protocol =
            |e: redis_protocol::error::RedisProtocolError| format!("invalid RESP ({e}): {}", before.escape_ascii());
        let found = if self.resp3 {
            redis_protocol::resp3::decode::complete::decode_bytes_mut(&mut self.buf)
                .map_err(protocol)?
                .map(|(frame, n, _)| (Value::from(frame), n))
        } else {
            redis_protocol::resp2::decode::decode_bytes_mut(&mut self.buf)
                .map_err(protocol)?
                .map(|(frame, n, _)| (Value::from(frame), n))
        };
        Ok(found.map(|(value, n)| Frame { value, raw: before[..n].to_vec() }))
    }
}

enum Filled {
    Some,
    Eof,
    Timeout,
}
