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
