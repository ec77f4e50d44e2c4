//! Pub/sub deliveries, encoded once per published message and shared.
//!
//! A `message` / `pmessage` / `smessage` frame is the same bytes in RESP2 and
//! RESP3 except its first byte (`*` array or `>` push). [`Frame`] keeps the
//! shared body and lets each session put its own header in front, so fan-out
//! never copies the payload per subscriber.

use bytes::{Bytes, BytesMut};

/// What kind of subscription a delivery (or a confirmation) belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    /// The push kind of a delivered message.
    pub fn message(self) -> &'static str {
        match self {
            Kind::Channel => "message",
            Kind::Pattern => "pmessage",
            Kind::Shard => "smessage",
        }
    }
}

/// An encoded message frame, minus its array/push header.
#[derive(Debug, Clone)]
pub struct Frame {
    /// 3 for message/smessage, 4 for pmessage.
    pub arity: u8,
    pub body: Bytes,
}

impl Frame {
    /// Encodes `[kind, (pattern,) channel, payload]` once. This is the
    /// one encoding on the publish path, so it is written out here rather
    /// than built as a redis-protocol frame (which allocates the item list
    /// and sizes numbers with floating-point logarithms).
    pub fn encode(kind: Kind, pattern: Option<&[u8]>, channel: &Bytes, payload: &Bytes) -> Frame {
        let items: [&[u8]; 4] = match pattern {
            Some(p) => [kind.message().as_bytes(), p, channel, payload],
            None => [kind.message().as_bytes(), channel, payload, &[]],
        };
        let arity = if pattern.is_some() { 4 } else { 3 };
        let items = &items[..arity];
        // Exactly the size: a full buffer freezes into `Bytes` without a
        // separate reference-count allocation.
        let mut body = BytesMut::with_capacity(items.iter().map(|i| bulk_len(i.len())).sum());
        for item in items {
            put_bulk(&mut body, item);
        }
        Frame { arity: arity as u8, body: body.freeze() }
    }

    /// The header this frame needs on a RESP2 or RESP3 connection.
    pub fn header(&self, resp3: bool) -> &'static [u8] {
        match (resp3, self.arity) {
            (false, 3) => b"*3\r\n",
            (false, _) => b"*4\r\n",
            (true, 3) => b">3\r\n",
            (true, _) => b">4\r\n",
        }
    }
}

/// The encoded size of a bulk string of `len` bytes: `$<len>\r\n<data>\r\n`.
fn bulk_len(len: usize) -> usize {
    let digits = len.checked_ilog10().map_or(1, |d| d as usize + 1);
    1 + digits + 2 + len + 2
}

/// Appends `data` as a RESP bulk string (the caller sized `out`).
fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    out.extend_from_slice(b"$");
    out.extend_from_slice(itoa::Buffer::new().format(data.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_plus_body_is_the_whole_frame() {
        let f = Frame::encode(Kind::Pattern, Some(&b"n*"[..]), &"news".into(), &"hi".into());
        let mut whole = f.header(false).to_vec();
        assert_eq!(&f.body[..], &b"$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"[..]);
        whole.extend_from_slice(&f.body);
        assert_eq!(whole, b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(f.header(true), b">4\r\n");
        let m = Frame::encode(Kind::Channel, None, &"c".into(), &Bytes::from(vec![b'x'; 1000]));
        assert_eq!(m.arity, 3);
        assert!(m.body.starts_with(b"$7\r\nmessage\r\n$1\r\nc\r\n$1000\r\nxxx"));
        assert!(m.body.ends_with(b"xx\r\n") && m.body.len() == 13 + 7 + 7 + 1000 + 2);
    }

    #[test]
    fn bulk_sizes_count_the_length_digits() {
        for len in [0, 1, 9, 10, 99, 100, 65535, 1 << 20] {
            let mut out = BytesMut::new();
            put_bulk(&mut out, &vec![b'x'; len]);
            assert_eq!(bulk_len(len), out.len(), "{len}");
        }
    }
}
