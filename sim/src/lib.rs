//! Runs the real Herald actors on one simulated host and drives them from
//! simulated clients over turmoil's network. Everything (latencies, the
//! order in which hosts run) follows the seed, so a seed replays exactly.
//!
//! This is the seam the server core promises: the same `Session`, channel
//! and pattern actors as production, with only the accept loop swapped.

pub mod reconnect;

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use herald::broker::Placement;
use herald::config::Config;
use herald::server::Server;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

pub const PORT: u16 = 6379;

/// What the clients saw, in simulated-time order.
#[derive(Default, Clone)]
pub struct Trace {
    pub events: Rc<RefCell<Vec<String>>>,
}

impl Trace {
    fn record(&self, who: &str, what: String) {
        let at = turmoil::elapsed().as_micros();
        self.events
            .borrow_mut()
            .push(format!("{at:>9}us {who}: {what}"));
    }

    /// A hash of the whole trace: equal seeds must give equal hashes.
    pub fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.events.borrow().hash(&mut h);
        h.finish()
    }

    pub fn lines(&self) -> Vec<String> {
        self.events.borrow().clone()
    }
}

/// A minimal RESP2 client for simulated hosts.
pub struct SimClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl SimClient {
    pub async fn connect() -> std::io::Result<SimClient> {
        let stream = TcpStream::connect(("herald", PORT)).await?;
        Ok(SimClient {
            stream,
            buf: BytesMut::new(),
        })
    }

    pub async fn send(&mut self, args: &[&str]) -> std::io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.stream.write_all(&out).await
    }

    pub async fn frame(&mut self) -> std::io::Result<OwnedFrame> {
        loop {
            if let Some((frame, len)) = decode(&self.buf).map_err(std::io::Error::other)? {
                let _ = self.buf.split_to(len);
                return Ok(frame);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    pub async fn cmd(&mut self, args: &[&str]) -> std::io::Result<OwnedFrame> {
        self.send(args).await?;
        self.frame().await
    }
}

/// The flat text of a reply, for traces and checks.
pub fn text(frame: &OwnedFrame) -> String {
    match frame {
        OwnedFrame::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b) => {
            String::from_utf8_lossy(b).into_owned()
        }
        OwnedFrame::Integer(i) => i.to_string(),
        OwnedFrame::Error(e) => format!("ERR({e})"),
        OwnedFrame::Null => "nil".into(),
    }
}

/// The Herald host: the production actors on turmoil's listener.
pub fn add_server(sim: &mut turmoil::Sim<'_>) {
    sim.host("herald", || async {
        let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
        let mut server = Server::start(Config::default(), Placement::Local);
        loop {
            let (stream, peer) = listener.accept().await?;
            server.accept_local(stream, peer.to_string(), format!("herald:{PORT}"));
        }
    });
}

/// One seeded run of the publish/subscribe scenario: a channel subscriber
/// and a pattern subscriber, two publishers each sending `per_publisher`
/// messages over two channels. Returns the clients' trace.
pub fn run_pubsub(seed: u64, per_publisher: usize) -> Result<Trace, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(5))
        .simulation_duration(Duration::from_secs(120))
        .build();
    add_server(&mut sim);
    let trace = Trace::default();
    let channels = ["orders", "payments"];

    for (name, pattern) in [("sub", false), ("psub", true)] {
        let trace = trace.clone();
        sim.client(name, async move {
            let mut c = SimClient::connect().await?;
            let confirm = if pattern {
                c.cmd(&["PSUBSCRIBE", "*s"]).await?
            } else {
                c.cmd(&["SUBSCRIBE", "orders", "payments"]).await?
            };
            trace.record(name, text(&confirm));
            if !pattern {
                trace.record(name, text(&c.frame().await?));
            }
            let mut last_seen = [None::<usize>; 2];
            for _ in 0..2 * per_publisher * 2 {
                let msg = text(&c.frame().await?);
                trace.record(name, msg.clone());
                let body = msg.rsplit(' ').next().unwrap_or_default();
                let (publisher, seq) = body.split_once('-').ok_or("malformed payload")?;
                let (p, seq): (usize, usize) = (publisher.parse()?, seq.parse()?);
                if let Some(prev) = last_seen[p] {
                    if seq != prev + 1 {
                        return Err(format!("{name}: publisher {p} went {prev} -> {seq}").into());
                    }
                }
                last_seen[p] = Some(seq);
            }
            Ok(())
        });
    }

    for p in 0..2usize {
        let trace = trace.clone();
        sim.client(format!("pub{p}"), async move {
            let mut c = SimClient::connect().await?;
            // Wait (in simulated time) until both subscribers are in.
            loop {
                let numsub = text(&c.cmd(&["PUBSUB", "NUMSUB", "orders"]).await?);
                let numpat = text(&c.cmd(&["PUBSUB", "NUMPAT"]).await?);
                if numsub == "orders 1" && numpat == "1" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for seq in 0..2 * per_publisher {
                let channel = channels[seq % 2];
                let n = text(&c.cmd(&["PUBLISH", channel, &format!("{p}-{seq}")]).await?);
                trace.record(
                    &format!("pub{p}"),
                    format!("PUBLISH {channel} {p}-{seq} -> {n}"),
                );
                if n != "2" {
                    return Err(
                        format!("pub{p}: PUBLISH reached {n} subscriptions, expected 2").into(),
                    );
                }
            }
            Ok(())
        });
    }

    sim.run().map_err(|e| format!("seed {seed}: {e}"))?;
    Ok(trace)
}
