//! The properties fuzz/ checks, shared with the tests that replay its
//! findings (tests/fuzz_regressions.rs). Each function panics on a
//! violation; none may panic or hang otherwise, whatever the input.

use std::cell::RefCell;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::Placement;
use crate::config::Config;
use crate::glob;
use crate::protocol::{Request, RequestDecoder};
use crate::server::Server;

/// Decoding a byte stream whole, or cut in two at a point the input picks,
/// gives the same requests.
pub fn request_decoder(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = cut as usize % (stream.len() + 1);
    let decode = |parts: &[&[u8]]| {
        let mut decoder = RequestDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut out: Vec<Request> = Vec::new();
        for part in parts {
            buf.extend_from_slice(part);
            while let Some(req) = tokio_util::codec::Decoder::decode(&mut decoder, &mut buf).expect("infallible") {
                out.push(req);
            }
        }
        out
    };
    let whole = decode(&[stream]);
    let split = decode(&[&stream[..cut], &stream[cut..]]);
    assert_eq!(whole, split, "cut at {cut} changed the requests");
}

/// The Redis port agrees with the independent reference matcher. The
/// first byte says how much of the rest is the pattern.
pub fn glob_agrees(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (pattern, subject) = rest.split_at((n as usize).min(rest.len()));
    assert_eq!(
        glob::matches(pattern, subject),
        glob::reference::matches(pattern, subject),
        "pattern {:?} subject {:?}",
        pattern.escape_ascii().to_string(),
        subject.escape_ascii().to_string()
    );
}

struct Rig {
    runtime: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
    server: Server,
}

thread_local! {
    // Leaked, never dropped: dropping a runtime from a thread-local's
    // destructor lets its timers (the registry's 100 ms rate sampler) wake
    // tasks into a LocalSet whose own thread-local is already gone, which
    // aborts the process.
    static RIG: RefCell<Option<&'static mut Rig>> = const { RefCell::new(None) };
}

/// A whole session fed `data` as a client would send it, then closed: it
/// must answer with well-formed RESP and close, within a bounded time. The
/// server (and its state) is shared by every call on a thread, as the
/// sessions of a real server share it.
pub fn session(data: &[u8]) {
    RIG.with(|rig| {
        let mut rig = rig.borrow_mut();
        let rig = rig.get_or_insert_with(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let local = tokio::task::LocalSet::new();
            let server = local.block_on(&runtime, async { Server::start(Config::default(), Placement::Local) });
            Box::leak(Box::new(Rig { runtime, local, server }))
        });
        let Rig { runtime, local, server } = rig;
        let output = local.block_on(runtime, async {
            let (client, server_side) = tokio::io::duplex(64 * 1024);
            server.accept_local(server_side, "fuzz:1".into(), "herald:6379".into());
            let (mut read, mut write) = tokio::io::split(client);
            let send = async {
                // The server may close first (QUIT, protocol error).
                let _ = write.write_all(data).await;
                let _ = write.shutdown().await;
            };
            let mut output = Vec::new();
            let receive = read.read_to_end(&mut output);
            let finished = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(send, receive) });
            let (_, received) = finished.await.expect("the session neither answered nor closed");
            received.expect("reading from an in-memory pipe");
            output
        });
        assert_well_formed(&output);
    });
}

/// Every byte Herald sent belongs to a complete RESP2 or RESP3 frame.
fn assert_well_formed(mut out: &[u8]) {
    while !out.is_empty() {
        let len = match redis_protocol::resp3::decode::complete::decode(out) {
            Ok(Some((_, len))) => len,
            _ => match redis_protocol::resp2::decode::decode(out) {
                Ok(Some((_, len))) => len,
                other => panic!("malformed output {other:?} at {:?}", out.escape_ascii().to_string()),
            },
        };
        out = &out[len..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_answers_and_closes() {
        session(b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nSUBSCRIBE a\r\nPING\r\n");
        session(b"HELLO 3\r\nSUBSCRIBE a\r\nPUBLISH a x\r\n*1\r\n+bad\r\n");
        session(b"*3\r\n$7\r\nPUBLISH\r\n$1\r\na\r\n$100\r\nshort");
    }

    #[test]
    fn malformed_output_is_caught() {
        assert!(std::panic::catch_unwind(|| assert_well_formed(b"+OK\r\n$5\r\nab")).is_err());
    }
}
