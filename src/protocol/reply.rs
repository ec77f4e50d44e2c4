//! What Herald answers, independent of the protocol version; encoded by
//! redis-protocol as RESP2 or RESP3 when written.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, VerbatimStringFormat};
use redis_protocol::{resp2, resp3};

/// A reply before it is encoded for one connection's protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(&'static str),
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// A flat array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// An array in RESP2.
    Set(Vec<Reply>),
    /// An array in RESP2; `>` in RESP3.
    Push(Vec<Reply>),
    /// A bulk string in RESP2; `=…txt:` in RESP3.
    Verbatim(Bytes),
    /// A bulk string (`%.17g`, as Redis' `addReplyDouble`) in RESP2; `,` in
    /// RESP3.
    Double(f64),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK")
    }

    pub fn text(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// Appends this reply, encoded for `resp3` or RESP2, to `out`.
    pub fn encode(&self, resp3: bool, out: &mut BytesMut) {
        match self {
            // redis-protocol's RESP2 has no null array.
            Reply::NilArray if !resp3 => out.extend_from_slice(b"*-1\r\n"),
            _ => self.encode_nested(resp3, out),
        }
    }

    /// Containers are written here, header then items, rather than as
    /// redis-protocol frames: its RESP3 sets and maps hold only hashable
    /// frames, and Redis' COMMAND INFO has maps inside sets (key specs).
    fn encode_nested(&self, resp3: bool, out: &mut BytesMut) {
        let header = |out: &mut BytesMut, kind: u8, len: usize| {
            out.extend_from_slice(&[kind]);
            out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        let (kind, items) = match self {
            // The publish path's reply, written without building a frame.
            Reply::Int(i) => {
                out.extend_from_slice(b":");
                out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                return out.extend_from_slice(b"\r\n");
            }
            Reply::Map(pairs) => {
                match resp3 {
                    true => header(out, b'%', pairs.len()),
                    false => header(out, b'*', pairs.len() * 2),
                }
                for (k, v) in pairs {
                    k.encode_nested(resp3, out);
                    v.encode_nested(resp3, out);
                }
                return;
            }
            Reply::Array(items) => (b'*', items),
            Reply::Set(items) => (if resp3 { b'~' } else { b'*' }, items),
            Reply::Push(items) => (if resp3 { b'>' } else { b'*' }, items),
            _ => {
                let written = if resp3 {
                    resp3::encode::complete::extend_encode(out, &self.to_resp3(), false)
                } else {
                    resp2::encode::extend_encode(out, &self.to_resp2(), false)
                };
                written.expect("replies are always encodable");
                return;
            }
        };
        header(out, kind, items.len());
        for item in items {
            item.encode_nested(resp3, out);
        }
    }

    fn to_resp2(&self) -> Frame2 {
        match self {
            Reply::Simple(s) => Frame2::SimpleString(Bytes::from_static(s.as_bytes())),
            Reply::Error(e) => Frame2::Error(one_line(e).into()),
            Reply::Int(i) => Frame2::Integer(*i),
            Reply::Bulk(b) | Reply::Verbatim(b) => Frame2::BulkString(b.clone()),
            Reply::Nil => Frame2::Null,
            // Only a top-level `*-1` can be written (above); nested, the
            // closest RESP2 frame is the null bulk string.
            Reply::NilArray => Frame2::Null,
            Reply::Double(d) => Frame2::BulkString(g17(*d).into()),
            Reply::Array(_) | Reply::Set(_) | Reply::Push(_) | Reply::Map(_) => {
                unreachable!("containers are written by encode_nested")
            }
        }
    }

    fn to_resp3(&self) -> Frame3 {
        let attributes = None;
        match self {
            Reply::Simple(s) => Frame3::SimpleString { data: Bytes::from_static(s.as_bytes()), attributes },
            Reply::Error(e) => Frame3::SimpleError { data: one_line(e).into(), attributes },
            Reply::Int(i) => Frame3::Number { data: *i, attributes },
            Reply::Bulk(b) => Frame3::BlobString { data: b.clone(), attributes },
            Reply::Verbatim(b) => {
                Frame3::VerbatimString { data: b.clone(), format: VerbatimStringFormat::Text, attributes }
            }
            Reply::Nil | Reply::NilArray => Frame3::Null,
            Reply::Double(d) => Frame3::Double { data: *d, attributes },
            Reply::Array(_) | Reply::Set(_) | Reply::Push(_) | Reply::Map(_) => {
                unreachable!("containers are written by encode_nested")
            }
        }
    }
}

/// C's `%.17g`, which Redis uses for doubles.
pub fn g17(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x.is_infinite() {
            if x > 0.0 { "inf" } else { "-inf" }.into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{x:.16e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent");
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    trim(&format!("{x:.*}", (16 - exp) as usize))
}

/// Error texts echo client input (command names, arguments); a CR or LF in
/// them would end the line early and corrupt the stream. Redis' reply
/// functions turn them into spaces, and so does Herald.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(r: Reply) -> (String, String) {
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        r.encode(false, &mut a);
        r.encode(true, &mut b);
        (String::from_utf8_lossy(&a).into_owned(), String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn errors_stay_on_one_line() {
        let (two, three) = both(Reply::Error("ERR unknown command 'a\r\nb'".into()));
        assert_eq!(two, "-ERR unknown command 'a  b'\r\n");
        assert_eq!(three, two);
    }

    #[test]
    fn nils_and_containers() {
        assert_eq!(both(Reply::Nil), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::NilArray), ("*-1\r\n".into(), "_\r\n".into()));
        let map = Reply::Map(vec![(Reply::text("a"), Reply::Int(1))]);
        assert_eq!(both(map), ("*2\r\n$1\r\na\r\n:1\r\n".into(), "%1\r\n$1\r\na\r\n:1\r\n".into()));
        let push = Reply::Push(vec![Reply::text("x")]);
        assert_eq!(both(push), ("*1\r\n$1\r\nx\r\n".into(), ">1\r\n$1\r\nx\r\n".into()));
        assert_eq!(both(Reply::Verbatim("hi".into())).1, "=6\r\ntxt:hi\r\n");
        assert_eq!(both(Reply::Int(-42)), (":-42\r\n".into(), ":-42\r\n".into()));
        assert_eq!(both(Reply::Int(i64::MAX)).0, format!(":{}\r\n", i64::MAX));
    }

    // The literal is an f32 value written out in full, on purpose: its
    // 17 significant digits are what `%.17g` must print.
    #[allow(clippy::excessive_precision)]
    #[test]
    fn doubles_print_as_c_does() {
        assert_eq!(g17(0.419), "0.41899999999999998");
        assert_eq!(g17(99.985931396484375), "99.985931396484375");
        assert_eq!(g17(100.0), "100");
        assert_eq!(g17(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(g17(0.0), "0");
        assert_eq!(both(Reply::Double(100.0)).0, "$3\r\n100\r\n");
    }
}
