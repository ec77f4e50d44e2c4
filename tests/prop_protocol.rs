//! Property tests of the wire: Herald's request decoder and its reply
//! encoding, against redis-protocol's decoder as the independent reader;
//! the glob port against the reference matcher.

use bytes::{Bytes, BytesMut};
use herald::resp::{Reply, Request, RequestDecoder};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use redis_protocol::resp2::types::OwnedFrame as F2;
use redis_protocol::resp3::types::OwnedFrame as F3;
use tokio_util::codec::Decoder;

fn decode_all(parts: &[&[u8]]) -> Vec<Request> {
    let mut decoder = RequestDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        while let Some(r) = decoder.decode(&mut buf).unwrap() {
            out.push(r);
        }
    }
    out
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend(a);
        out.extend(b"\r\n");
    }
    out
}

fn command(args: &[Vec<u8>]) -> Request {
    Request::Command(args.iter().map(|a| Bytes::copy_from_slice(a)).collect())
}

/// A reply tree whose every RESP2 and RESP3 encoding redis-protocol can read.
fn reply() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Reply::Int),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| Reply::Bulk(b.into())),
        prop::sample::select(vec!["OK", "PONG", "QUEUED"]).prop_map(Reply::Simple),
        "[a-zA-Z ]{1,12}".prop_map(|e| Reply::Error(format!("ERR {e}"))),
        Just(Reply::Nil),
        "[a-z=\n]{0,12}".prop_map(|t| Reply::Verbatim(t.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Reply::Array),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Reply::Push),
            // Map keys are distinct ints so RESP3's map keeps them all.
            prop::collection::vec(inner, 0..4).prop_map(|vs| Reply::Map(
                vs.into_iter().enumerate().map(|(i, v)| (Reply::Int(i as i64), v)).collect()
            )),
        ]
    })
}

/// What a RESP2 reader must see for `r`.
fn as_resp2(r: &Reply) -> F2 {
    match r {
        Reply::Simple(s) => F2::SimpleString(s.as_bytes().to_vec()),
        Reply::Error(e) => F2::Error(e.clone()),
        Reply::Int(i) => F2::Integer(*i),
        Reply::Bulk(b) | Reply::Verbatim(b) => F2::BulkString(b.to_vec()),
        Reply::Nil | Reply::NilArray => F2::Null,
        Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => F2::Array(v.iter().map(as_resp2).collect()),
        Reply::Map(kv) => F2::Array(kv.iter().flat_map(|(k, v)| [as_resp2(k), as_resp2(v)]).collect()),
        Reply::Double(d) => F2::BulkString(herald::resp::g17(*d).into_bytes()),
    }
}

/// The same tree read back from RESP3, flattened to comparable text.
fn shape3(f: &F3) -> String {
    match f {
        F3::BlobString { data, .. } => format!("bulk({data:?})"),
        F3::VerbatimString { data, .. } => format!("verbatim({data:?})"),
        F3::SimpleString { data, .. } => format!("simple({data:?})"),
        F3::SimpleError { data, .. } => format!("error({data})"),
        F3::Number { data, .. } => format!("int({data})"),
        F3::Null => "nil".into(),
        F3::Double { data, .. } => format!("double({data})"),
        F3::Array { data, .. } => format!("array[{}]", data.iter().map(shape3).collect::<Vec<_>>().join(",")),
        F3::Push { data, .. } => format!("push[{}]", data.iter().map(shape3).collect::<Vec<_>>().join(",")),
        F3::Map { data, .. } => {
            // redis-protocol's owned decoder does not keep map order (the
            // wire order is checked by the transcript and differential tests).
            let mut entries: Vec<String> = data.iter().map(|(k, v)| format!("{}={}", shape3(k), shape3(v))).collect();
            entries.sort();
            format!("map[{}]", entries.join(","))
        }
        other => format!("unexpected({other:?})"),
    }
}

fn expected3(r: &Reply) -> String {
    let list = |v: &[Reply]| v.iter().map(expected3).collect::<Vec<_>>().join(",");
    match r {
        Reply::Simple(s) => format!("simple({:?})", s.as_bytes()),
        Reply::Error(e) => format!("error({e})"),
        Reply::Int(i) => format!("int({i})"),
        Reply::Bulk(b) => format!("bulk({:?})", b.to_vec()),
        Reply::Verbatim(b) => format!("verbatim({:?})", b.to_vec()),
        Reply::Nil | Reply::NilArray => "nil".into(),
        Reply::Double(d) => format!("double({d})"),
        Reply::Array(v) | Reply::Set(v) => format!("array[{}]", list(v)),
        Reply::Push(v) => format!("push[{}]", list(v)),
        Reply::Map(kv) => {
            let mut entries: Vec<String> =
                kv.iter().map(|(k, v)| format!("{}={}", expected3(k), expected3(v))).collect();
            entries.sort();
            format!("map[{}]", entries.join(","))
        }
    }
}

/// Failures found so far (committed), replayed before new cases.
const REGRESSIONS: &str = "tests/proptest-regressions/prop_protocol.txt";

/// The committed failures are where the configuration reads them from (they
/// once sat beside this file, where nothing read them).
#[test]
fn committed_regressions_are_where_they_are_read() {
    let text = std::fs::read_to_string(REGRESSIONS).expect("the regressions file");
    assert!(text.lines().filter(|l| l.starts_with("cc ")).count() >= 2, "{text}");
}

proptest! {
    // Failures are kept in tests/proptest-regressions/ (committed) and
    // replayed first on every run.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn multibulk_round_trips_and_splits_anywhere(
        commands in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..5), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let stream: Vec<u8> = commands.iter().flat_map(|c| multibulk(c)).collect();
        let expected: Vec<Request> = commands.iter().map(|c| command(c)).collect();
        prop_assert_eq!(&decode_all(&[&stream]), &expected);
        let cut = cut.index(stream.len() + 1);
        prop_assert_eq!(decode_all(&[&stream[..cut], &stream[cut..]]), expected);
    }

    #[test]
    // A line starting with `*` is a multibulk header, for Redis too.
    fn inline_commands_round_trip(args in prop::collection::vec("[a-zA-Z0-9:_][a-zA-Z0-9:_*]{0,7}", 1..5)) {
        let line = format!("{}\r\n", args.join(" "));
        let expected = command(&args.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>());
        prop_assert_eq!(decode_all(&[line.as_bytes()]), vec![expected]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(data in prop::collection::vec(any::<u8>(), 0..256)) {
        herald::fuzzing::request_decoder(&data);
    }

    #[test]
    fn replies_encode_to_what_redis_protocol_reads_back(r in reply()) {
        let mut two = BytesMut::new();
        r.encode(false, &mut two);
        let (frame, len) = redis_protocol::resp2::decode::decode(&two).unwrap().expect("a whole RESP2 frame");
        prop_assert_eq!(len, two.len());
        prop_assert_eq!(frame, as_resp2(&r));

        let mut three = BytesMut::new();
        r.encode(true, &mut three);
        let (frame, len) = redis_protocol::resp3::decode::complete::decode(&three).unwrap().expect("a whole RESP3 frame");
        prop_assert_eq!(len, three.len());
        prop_assert_eq!(shape3(&frame), expected3(&r));
    }

    #[test]
    fn glob_port_agrees_with_reference(
        pattern in prop::collection::vec(prop::sample::select(b"ab*?[]^-\\".to_vec()), 0..10),
        subject in prop::collection::vec(prop::sample::select(b"ab]-*\\^".to_vec()), 0..8),
    ) {
        prop_assert_eq!(
            herald::pattern::matches(&pattern, &subject),
            herald::pattern::reference(&pattern, &subject),
            "pattern {:?} subject {:?}", pattern.escape_ascii().to_string(), subject.escape_ascii().to_string()
        );
    }
}
