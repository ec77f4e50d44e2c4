//! Turns the bytes a client sends into commands, exactly as Redis'
//! `processMultibulkBuffer` / `processInlineBuffer` would.
//!
//! redis-protocol's decoder waits for a whole frame before it says anything,
//! so a `$1073741824` header would be buffered to the end; Redis answers such
//! headers at once. This decoder checks every header as soon as it arrives and
//! keeps its place between reads, so a large pipeline is scanned once.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::inline::split_args;

/// Redis' `PROTO_INLINE_MAX_SIZE`: the longest inline line or header.
pub(crate) const INLINE_MAX: usize = 64 * 1024;

/// One thing a client said.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A command and its arguments (never empty).
    Command(Vec<Bytes>),
    /// A protocol error; Redis replies `-ERR Protocol error: …` and closes.
    Invalid(&'static str, Option<u8>),
    /// The command being received would pass `client-query-buffer-limit`;
    /// Redis closes such a client without a reply.
    TooBig,
}

impl Request {
    /// The error text Redis sends for an invalid request.
    pub fn error_text(reason: &str, got: Option<u8>) -> String {
        match got {
            Some(b) => format!("ERR Protocol error: {reason} '{}'", b as char),
            None => format!("ERR Protocol error: {reason}"),
        }
    }
}

#[derive(Debug)]
struct Multibulk {
    remaining: usize,
    args: Vec<Bytes>,
    /// The arguments' bytes so far.
    bytes: usize,
    bulk_len: Option<usize>,
}

/// Incremental request decoder; see the module docs.
#[derive(Debug)]
pub struct RequestDecoder {
    max_bulk_len: usize,
    max_query: usize,
    partial: Option<Multibulk>,
    failed: bool,
}

/// Redis' default `client-query-buffer-limit`.
pub(crate) const QUERY_LIMIT_DEFAULT: usize = 1 << 30;

impl RequestDecoder {
    pub fn new(max_bulk_len: usize) -> Self {
        RequestDecoder { max_bulk_len, max_query: QUERY_LIMIT_DEFAULT, partial: None, failed: false }
    }

    /// The most one command may hold (Redis' `client-query-buffer-limit`).
    pub fn query_limit(self, max_query: usize) -> Self {
        RequestDecoder { max_query, ..self }
    }

    fn fail(&mut self, reason: &'static str, got: Option<u8>) -> Option<Request> {
        self.failed = true;
        self.partial = None;
        Some(Request::Invalid(reason, got))
    }

    /// Finds the `\r` ending a header line; `None` until the byte after it
    /// has arrived too, as Redis waits for it (without checking it is `\n`).
    fn header_end(buf: &[u8]) -> Option<usize> {
        let cr = buf.iter().position(|&b| b == b'\r')?;
        (cr + 2 <= buf.len()).then_some(cr)
    }

    fn next(&mut self, buf: &mut BytesMut) -> Option<Request> {
        loop {
            if self.failed {
                return None;
            }
            if self.partial.is_none() {
                if buf.is_empty() {
                    return None;
                }
                if buf[0] != b'*' {
                    return self.inline(buf);
                }
                let Some(cr) = Self::header_end(buf) else {
                    if buf.len() > INLINE_MAX {
                        return self.fail("too big mbulk count string", None);
                    }
                    return None;
                };
                let count = parse_i64(&buf[1..cr]);
                buf.advance(cr + 2);
                match count {
                    Some(n) if n <= i32::MAX as i64 => {
                        if n <= 0 {
                            continue;
                        }
                        let n = n as usize;
                        self.partial = Some(Multibulk {
                            remaining: n,
                            args: Vec::with_capacity(n.min(1024)),
                            bytes: 0,
                            bulk_len: None,
                        });
                    }
                    _ => return self.fail("invalid multibulk length", None),
                }
            }
            let (max_bulk_len, max_query) = (self.max_bulk_len, self.max_query);
            let mb = self.partial.as_mut().expect("partial multibulk");
            while mb.remaining > 0 {
                let len = match mb.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(cr) = Self::header_end(buf) else {
                            if buf.len() > INLINE_MAX {
                                return self.fail("too big bulk count string", None);
                            }
                            return None;
                        };
                        if buf[0] != b'$' {
                            let got = buf[0];
                            return self.fail("expected '$', got", Some(got));
                        }
                        let len = match parse_i64(&buf[1..cr]) {
                            Some(n) if n >= 0 && n as u64 <= max_bulk_len as u64 => n as usize,
                            _ => return self.fail("invalid bulk length", None),
                        };
                        buf.advance(cr + 2);
                        mb.bulk_len = Some(len);
                        len
                    }
                };
                if mb.bytes + len > max_query {
                    self.failed = true;
                    self.partial = None;
                    return Some(Request::TooBig);
                }
                if buf.len() < len + 2 {
                    buf.reserve(len + 2 - buf.len());
                    return None;
                }
                mb.bytes += len;
                mb.args.push(buf.split_to(len).freeze());
                buf.advance(2);
                mb.bulk_len = None;
                mb.remaining -= 1;
            }
            let done = self.partial.take().expect("partial multibulk");
            return Some(Request::Command(done.args));
        }
    }

    fn inline(&mut self, buf: &mut BytesMut) -> Option<Request> {
        loop {
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() > INLINE_MAX {
                    return self.fail("too big inline request", None);
                }
                return None;
            };
            let line = buf.split_to(nl + 1);
            let mut line = &line[..nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            match split_args(line) {
                Err(_) => return self.fail("unbalanced quotes in request", None),
                Ok(args) if args.is_empty() => {
                    if buf.is_empty() || buf[0] == b'*' {
                        return self.next(buf);
                    }
                }
                Ok(args) => return Some(Request::Command(args)),
            }
        }
    }
}

/// Redis' `string2ll`: optional `-`, no `+`, no leading zeros, no overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = (d - b'0') as i64;
        v = if neg { v.checked_mul(10)?.checked_sub(d)? } else { v.checked_mul(10)?.checked_add(d)? };
    }
    Some(v)
}

/// Room for the first read: most connections are idle subscribers.
const FIRST_READ: usize = 1024;
/// The most room one read gets: Redis reads 16 KiB at a time; more lets a
/// deep pipeline of PUBLISH travel as one run.
const MAX_READ: usize = 64 * 1024;

/// Yields every request already complete in the buffer as one batch, so a
/// session sees a client's whole pipeline at once (and can forward runs of
/// PUBLISH together).
#[derive(Debug)]
pub(crate) struct PipelineDecoder {
    requests: RequestDecoder,
    /// Room to leave for the next read: doubled when a read fills it,
    /// halved when reads stay small, as Redis grows and trims query buffers.
    read_size: usize,
    /// What the buffer held after the last call: anything beyond it since
    /// is one read's bytes.
    left: usize,
    traffic: Option<std::sync::Arc<crate::stats::Traffic>>,
}

impl PipelineDecoder {
    pub(crate) fn new(requests: RequestDecoder) -> PipelineDecoder {
        PipelineDecoder { requests, read_size: FIRST_READ, left: 0, traffic: None }
    }

    /// Counts every read's bytes in `traffic` (INFO's net input figures).
    pub(crate) fn counting(self, traffic: std::sync::Arc<crate::stats::Traffic>) -> PipelineDecoder {
        PipelineDecoder { traffic: Some(traffic), ..self }
    }

    /// The capacity a new read buffer should have.
    pub(crate) fn first_read() -> usize {
        FIRST_READ
    }
}

impl Decoder for PipelineDecoder {
    type Item = Vec<Request>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Request>>, std::io::Error> {
        let (unread, capacity) = (buf.len(), buf.capacity());
        if let Some(traffic) = self.traffic.as_ref().filter(|_| unread > self.left) {
            traffic.read(unread - self.left);
        }
        let batch: Vec<Request> = std::iter::from_fn(|| self.requests.next(buf)).collect();
        self.left = buf.len();
        if batch.is_empty() {
            // The reader asks again, before its next read, once the last
            // batch has been handled: by then the requests, which share the
            // buffer's memory, are usually gone and the buffer is reused in
            // place. Reserving while they live would allocate a fresh one
            // per batch. The room is what the client's pipelining has shown
            // it needs (the reader's own `reserve(1)` would give the first size).
            buf.reserve(self.read_size.saturating_sub(buf.len()));
            return Ok(None);
        }
        if unread == capacity {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        } else if unread < self.read_size / 8 {
            self.read_size = (self.read_size / 2).max(FIRST_READ);
        }
        Ok(Some(batch))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Request>>, std::io::Error> {
        let batch = self.decode(buf)?;
        if batch.is_none() {
            buf.clear();
        }
        Ok(batch)
    }
}

impl Decoder for RequestDecoder {
    type Item = Request;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, std::io::Error> {
        Ok(self.next(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, std::io::Error> {
        // A half-sent command at EOF is dropped, as Redis drops it.
        let req = self.next(buf);
        if req.is_none() {
            buf.clear();
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Request> {
        let mut d = RequestDecoder::new(512 * 1024 * 1024);
        let mut buf = BytesMut::from(input);
        std::iter::from_fn(|| d.next(&mut buf)).collect()
    }

    fn cmd(args: &[&str]) -> Request {
        Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect())
    }

    #[test]
    fn multibulk_and_inline_mix() {
        let got = all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n\r\n*0\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(got, vec![cmd(&["ECHO", "hi"]), cmd(&["PING"]), cmd(&["PING"])]);
    }

    #[test]
    fn read_room_grows_while_reads_fill_it_and_shrinks_back() {
        let mut d = PipelineDecoder::new(RequestDecoder::new(1 << 20));
        let ping = b"*1\r\n$4\r\nPING\r\n";
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        // A read that filled the buffer: whole commands, then the start of
        // a big one.
        while buf.capacity() - buf.len() >= ping.len() + 16 {
            buf.extend_from_slice(ping);
        }
        buf.extend_from_slice(b"*1\r\n$9000\r\n");
        let rest = 9000 - (buf.capacity() - buf.len());
        buf.resize(buf.capacity(), b'x');
        let pings = d.decode(&mut buf).unwrap().expect("the whole commands");
        assert!(pings.len() > 50);
        // The reader asks again before reading on.
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 2 * FIRST_READ, "room for the next read: {}", buf.capacity());
        // The big command's rest, then small reads: the room shrinks back.
        buf.resize(buf.len() + rest, b'x');
        buf.extend_from_slice(b"\r\n");
        assert_eq!(d.decode(&mut buf).unwrap().map(|b| b.len()), Some(1));
        for _ in 0..8 {
            buf.extend_from_slice(ping);
            assert_eq!(d.decode(&mut buf).unwrap().map(|b| b.len()), Some(1));
        }
        assert_eq!(d.read_size, FIRST_READ);
    }

    #[test]
    fn a_handled_batch_leaves_its_buffer_to_the_next_read() {
        let mut d = PipelineDecoder::new(RequestDecoder::new(1 << 20));
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        buf.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nhi\r\n");
        let start = buf.as_ptr();
        let batch = d.decode(&mut buf).unwrap().expect("one command");
        drop(batch);
        assert!(d.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.as_ptr(), start, "the same memory, not a fresh buffer");
        assert!(buf.capacity() >= FIRST_READ);
    }

    #[test]
    fn every_split_point_decodes_the_same() {
        let input = b"*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$5\r\nhello\r\nPING x\r\n";
        for cut in 0..input.len() {
            let mut d = RequestDecoder::new(1 << 20);
            let mut buf = BytesMut::from(&input[..cut]);
            let mut out: Vec<Request> = std::iter::from_fn(|| d.next(&mut buf)).collect();
            buf.extend_from_slice(&input[cut..]);
            out.extend(std::iter::from_fn(|| d.next(&mut buf)));
            assert_eq!(out, vec![cmd(&["PUBLISH", "a", "hello"]), cmd(&["PING", "x"])], "cut at {cut}");
        }
    }

    #[test]
    fn errors_are_redis_errors() {
        let long_inline = vec![b'a'; INLINE_MAX + 1];
        let cases: [(&[u8], Request); 6] = [
            (b"*a\r\n", Request::Invalid("invalid multibulk length", None)),
            (b"*2\r\n$-1\r\n", Request::Invalid("invalid bulk length", None)),
            (b"*1\r\n+x\r\n", Request::Invalid("expected '$', got", Some(b'+'))),
            (b"*1\r\n$999999999999\r\n", Request::Invalid("invalid bulk length", None)),
            (b"PING \"a\r\n", Request::Invalid("unbalanced quotes in request", None)),
            (&long_inline, Request::Invalid("too big inline request", None)),
        ];
        for (input, expected) in cases {
            assert_eq!(all(input), vec![expected], "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn a_command_over_the_query_limit_is_refused_before_it_is_buffered() {
        let mut d = RequestDecoder::new(1 << 20).query_limit(1000);
        let mut buf = BytesMut::from(&b"*3\r\n$600\r\n"[..]);
        buf.extend_from_slice(&[b'a'; 600]);
        buf.extend_from_slice(b"\r\n$600\r\n");
        assert_eq!(d.next(&mut buf), Some(Request::TooBig));
        assert_eq!(d.next(&mut buf), None);
        let mut d = RequestDecoder::new(1 << 20).query_limit(1000);
        assert_eq!(d.next(&mut BytesMut::from(&b"*1\r\n$4\r\nPING\r\n"[..])), Some(cmd(&["PING"])));
    }

    #[test]
    fn string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }
}
