//! Replies and pushes as the client sees them, RESP2 or RESP3 alike.

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::BytesFrame as Frame3;

/// A decoded server frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null (`$-1`, `*-1`, `_`).
    Nil,
    /// An integer.
    Int(i64),
    /// A bulk (blob) string.
    Bulk(Bytes),
    /// A simple status string such as `OK`.
    Simple(String),
    /// An error reply.
    Error(String),
    /// An array (or RESP3 set).
    Array(Vec<Value>),
    /// RESP3 out-of-band data (pub/sub messages and confirmations).
    Push(Vec<Value>),
    /// A RESP3 map (a flat array in RESP2).
    Map(Vec<(Value, Value)>),
    /// A RESP3 boolean.
    Bool(bool),
    /// A RESP3 double.
    Double(f64),
}

impl Value {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items of an array, set or push.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl From<Frame2> for Value {
    fn from(f: Frame2) -> Value {
        match f {
            Frame2::SimpleString(s) => Value::Simple(text(&s)),
            Frame2::Error(e) => Value::Error(e.to_string()),
            Frame2::Integer(i) => Value::Int(i),
            Frame2::BulkString(b) => Value::Bulk(b),
            Frame2::Array(items) => Value::Array(items.into_iter().map(Value::from).collect()),
            Frame2::Null => Value::Nil,
        }
    }
}

impl From<Frame3> for Value {
    fn from(f: Frame3) -> Value {
        match f {
            Frame3::BlobString { data, .. } | Frame3::VerbatimString { data, .. } | Frame3::BigNumber { data, .. } => {
                Value::Bulk(data)
            }
            Frame3::SimpleString { data, .. } => Value::Simple(text(&data)),
            Frame3::BlobError { data, .. } => Value::Error(text(&data)),
            Frame3::SimpleError { data, .. } => Value::Error(data.to_string()),
            Frame3::Number { data, .. } => Value::Int(data),
            Frame3::Double { data, .. } => Value::Double(data),
            Frame3::Boolean { data, .. } => Value::Bool(data),
            Frame3::Null => Value::Nil,
            Frame3::Array { data, .. } => Value::Array(data.into_iter().map(Value::from).collect()),
            Frame3::Set { data, .. } => Value::Array(data.into_iter().map(Value::from).collect()),
            Frame3::Push { data, .. } => Value::Push(data.into_iter().map(Value::from).collect()),
            Frame3::Map { data, .. } => Value::Map(data.into_iter().map(|(k, v)| (k.into(), v.into())).collect()),
            // Streamed and hello frames never complete-decode; keep a marker.
            other => Value::Error(format!("unsupported frame {other:?}")),
        }
    }
}

/// Reads one whole RESP3 frame off the front of `buf` by its structure:
/// the frame and the bytes it took, `Ok(None)` if it is not all there yet.
/// Only for what redis-protocol's decoder refuses: its sets hold only
/// hashable frames, and Redis' COMMAND INFO sends maps inside a set (key
/// specs). A set is read as an array, as [`Value`] keeps sets.
pub(crate) fn read_resp3(buf: &[u8]) -> std::result::Result<Option<(Value, usize)>, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let (line, mut at) = (&buf[..end], end + 2);
    let Some((&kind, body)) = line.split_first() else { return Err("an empty RESP3 line".into()) };
    let body_text = String::from_utf8_lossy(body);
    let number = || body_text.parse::<i64>().map_err(|_| format!("bad RESP3 length {body_text:?}"));
    let several = |n: i64, at: &mut usize| -> std::result::Result<Option<Vec<Value>>, String> {
        let mut items = Vec::new();
        for _ in 0..n.max(0) {
            match read_resp3(&buf[*at..])? {
                Some((item, used)) => {
                    items.push(item);
                    *at += used;
                }
                None => return Ok(None),
            }
        }
        Ok(Some(items))
    };
    let value = match kind {
        b'+' => Value::Simple(body_text.into_owned()),
        b'-' => Value::Error(body_text.into_owned()),
        b':' => Value::Int(number()?),
        b'_' => Value::Nil,
        b'#' => Value::Bool(body == b"t"),
        b',' => Value::Double(body_text.parse().map_err(|_| format!("bad RESP3 double {body_text:?}"))?),
        b'(' => Value::Bulk(Bytes::copy_from_slice(body)),
        b'$' | b'=' | b'!' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Value::Nil, at)));
            }
            let len = len as usize;
            if buf.len() < at + len + 2 {
                return Ok(None);
            }
            let data = &buf[at..at + len];
            at += len + 2;
            match kind {
                b'!' => Value::Error(String::from_utf8_lossy(data).into_owned()),
                // A verbatim string's data is what follows its `txt:`.
                b'=' => Value::Bulk(Bytes::copy_from_slice(data.get(4..).unwrap_or_default())),
                _ => Value::Bulk(Bytes::copy_from_slice(data)),
            }
        }
        b'*' | b'~' | b'>' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some((Value::Nil, at)));
            }
            let Some(items) = several(n, &mut at)? else { return Ok(None) };
            if kind == b'>' {
                Value::Push(items)
            } else {
                Value::Array(items)
            }
        }
        b'%' => {
            let Some(flat) = several(number()? * 2, &mut at)? else { return Ok(None) };
            let mut items = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Value::Map(pairs)
        }
        other => return Err(format!("unexpected RESP3 type {:?}", other as char)),
    };
    Ok(Some((value, at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis' COMMAND INFO of SPUBLISH in RESP3 (a set holding a map), read
    /// whole, and not before it is all there.
    #[test]
    fn a_set_of_maps_is_read_by_structure() {
        let frame: &[u8] = b"*1\r\n*10\r\n$8\r\nspublish\r\n:3\r\n~1\r\n+pubsub\r\n:1\r\n:1\r\n:1\r\n~1\r\n+@pubsub\r\n~0\r\n~1\r\n%1\r\n$5\r\nflags\r\n~1\r\n+not_key\r\n~0\r\n";
        let (value, used) = read_resp3(frame).unwrap().expect("a whole frame");
        assert_eq!(used, frame.len());
        let entry = value.items().unwrap()[0].items().unwrap();
        assert_eq!(entry[0].as_bytes(), Some(&b"spublish"[..]));
        assert_eq!(entry[3].as_int(), Some(1));
        let Value::Map(spec) = &entry[8].items().unwrap()[0] else { panic!("a key spec map") };
        assert_eq!(spec[0].0.as_bytes(), Some(&b"flags"[..]));
        for cut in 0..frame.len() {
            assert_eq!(read_resp3(&frame[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(redis_protocol::resp3::decode::complete::decode(frame).is_err(), "the crate still refuses it");
    }
}
