//! Pub/sub deliveries, encoded once per published message and shared.
//!
//! A `message` / `pmessage` / `smessage` frame is the same bytes in RESP2 and
//! RESP3 except its first byte (`*` array or `>` push). [`Frame`] keeps the
//! shared body and lets each session put its own header in front, so fan-out
//! never copies the payload per subscriber.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::{encode::extend_encode, types::BytesFrame};

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
    /// Encodes `[kind, (pattern,) channel, payload]` once.
    pub fn encode(kind: Kind, pattern: Option<&Bytes>, channel: &Bytes, payload: &Bytes) -> Frame {
        let mut items = Vec::with_capacity(4);
        items.push(BytesFrame::BulkString(Bytes::from_static(kind.message().as_bytes())));
        if let Some(p) = pattern {
            items.push(BytesFrame::BulkString(p.clone()));
        }
        items.push(BytesFrame::BulkString(channel.clone()));
        items.push(BytesFrame::BulkString(payload.clone()));
        let arity = items.len() as u8;
        let mut buf = BytesMut::with_capacity(payload.len() + channel.len() + 48);
        extend_encode(&mut buf, &BytesFrame::Array(items), false).expect("bulk strings encode");
        let body = buf.freeze().slice(HEADER_LEN..);
        Frame { arity, body }
    }

    /// The header this frame needs on a RESP2 or RESP3 connection.
    pub fn header(&self, resp3: bool) -> Bytes {
        let h: &'static [u8; HEADER_LEN] = match (resp3, self.arity) {
            (false, 3) => b"*3\r\n",
            (false, _) => b"*4\r\n",
            (true, 3) => b">3\r\n",
            (true, _) => b">4\r\n",
        };
        Bytes::from_static(h)
    }
}

const HEADER_LEN: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_plus_body_is_the_whole_frame() {
        let f = Frame::encode(Kind::Pattern, Some(&"n*".into()), &"news".into(), &"hi".into());
        let mut whole = f.header(false).to_vec();
        whole.extend_from_slice(&f.body);
        assert_eq!(whole, b"*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
        assert_eq!(&f.header(true)[..], b">4\r\n");
    }
}
