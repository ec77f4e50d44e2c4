//! Subscriptions as a stream of events, kept alive across reconnects.
//!
//! A driver task owns the connection. It re-issues every subscription after
//! a reconnect and puts a [`Event::Reconnected`] in the stream before the
//! first message from the new connection, so the gap is never silent. It
//! never replays: messages come only from the server, each once.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::transport::Connector;
use crate::value::Value;

/// Events queued for a slow reader before the driver stops reading the
/// socket (the server then buffers, and may drop a subscriber that never
/// catches up: that shows as a reconnect with a gap).
const EVENT_QUEUE: usize = 1024;

/// What a subscription is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// SUBSCRIBE: `message`.
    Channel,
    /// PSUBSCRIBE: `pmessage`.
    Pattern,
    /// SSUBSCRIBE: `smessage`.
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    fn verbs(self) -> (&'static str, &'static str) {
        match self {
            Kind::Channel => ("subscribe", "unsubscribe"),
            Kind::Pattern => ("psubscribe", "punsubscribe"),
            Kind::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

/// A published message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Which subscription delivered it.
    pub kind: Kind,
    /// The channel it was published on.
    pub channel: Bytes,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
    /// The message itself.
    pub payload: Bytes,
}

/// What a subscriber's stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message for one of the subscriptions.
    Message(Message),
    /// The connection was lost. Messages published from now until the
    /// next `Reconnected` are not delivered.
    Disconnected {
        /// What went wrong.
        reason: String,
    },
    /// Connected again, with every subscription re-issued and confirmed by
    /// the server: whatever is published from now on is delivered. Comes
    /// before any message received on the new connection.
    Reconnected {
        /// Connection attempts it took.
        attempts: u32,
        /// Time from noticing the loss to resubscribing.
        down_for: Duration,
    },
    /// The server ended a subscription it was not asked to end: in a
    /// cluster, a shard channel whose slot moved to another node (Redis 7's
    /// unasked `sunsubscribe`). Nothing more comes for it on this
    /// connection; [`crate::ClusterPubSub`] subscribes again at the new node.
    Unsubscribed {
        /// Its kind.
        kind: Kind,
        /// The channel or pattern.
        name: Bytes,
    },
}

enum Command {
    Subscribe { kind: Kind, names: Vec<Bytes>, done: oneshot::Sender<Result<()>> },
    Unsubscribe { kind: Kind, names: Vec<Bytes>, done: oneshot::Sender<Result<()>> },
}

/// A subscriber connection: subscribe and unsubscribe at any time, read
/// events with [`PubSub::next`] or as a [`futures_core::Stream`].
pub struct PubSub {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<Result<Event>>,
    driver: JoinHandle<()>,
}

impl Drop for PubSub {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl PubSub {
    pub(crate) async fn connect(config: Config, connector: Arc<dyn Connector>) -> Result<PubSub> {
        let conn = Connection::open(&config, &*connector).await?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let rng = match config.backoff.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let driver = Driver {
            config,
            connector,
            wanted: Default::default(),
            unasked: Vec::new(),
            expect: VecDeque::new(),
            rng,
            events: events_tx,
            commands: commands_rx,
        };
        let driver = tokio::spawn(driver.run(conn));
        Ok(PubSub { commands, events, driver })
    }

    async fn call(&self, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Command) -> Result<()> {
        let (done, wait) = oneshot::channel();
        let closed = || Error::Io(std::io::ErrorKind::NotConnected.into());
        self.commands.send(make(done)).map_err(|_| closed())?;
        wait.await.map_err(|_| closed())?
    }

    async fn subscribe_kind<N: AsRef<[u8]>>(&self, kind: Kind, names: &[N]) -> Result<()> {
        let names = names.iter().map(|n| Bytes::copy_from_slice(n.as_ref())).collect();
        self.call(|done| Command::Subscribe { kind, names, done }).await
    }

    async fn unsubscribe_kind<N: AsRef<[u8]>>(&self, kind: Kind, names: &[N]) -> Result<()> {
        let names = names.iter().map(|n| Bytes::copy_from_slice(n.as_ref())).collect();
        self.call(|done| Command::Unsubscribe { kind, names, done }).await
    }

    /// Subscribes to channels; returns once the server confirmed, so
    /// anything published afterwards is delivered.
    pub async fn subscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<()> {
        self.subscribe_kind(Kind::Channel, channels).await
    }

    /// Subscribes to glob patterns (`news:*`, `user:?:alerts`).
    pub async fn psubscribe<N: AsRef<[u8]>>(&self, patterns: &[N]) -> Result<()> {
        self.subscribe_kind(Kind::Pattern, patterns).await
    }

    /// Subscribes to shard channels.
    pub async fn ssubscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<()> {
        self.subscribe_kind(Kind::Shard, channels).await
    }

    /// Unsubscribes from channels (all of them if `channels` is empty).
    /// Once it returns, no message for them is delivered.
    pub async fn unsubscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<()> {
        self.unsubscribe_kind(Kind::Channel, channels).await
    }

    /// Unsubscribes from patterns (all of them if empty).
    pub async fn punsubscribe<N: AsRef<[u8]>>(&self, patterns: &[N]) -> Result<()> {
        self.unsubscribe_kind(Kind::Pattern, patterns).await
    }

    /// Unsubscribes from shard channels (all of them if empty).
    pub async fn sunsubscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<()> {
        self.unsubscribe_kind(Kind::Shard, channels).await
    }

    /// The next event; `None` once the subscriber has stopped for good.
    pub async fn next(&mut self) -> Option<Result<Event>> {
        self.events.recv().await
    }
}

impl futures_core::Stream for PubSub {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Event>>> {
        self.events.poll_recv(cx)
    }
}

/// Confirmations the current connection still owes for one command.
struct Expect {
    verb: &'static str,
    remaining: usize,
    done: Vec<oneshot::Sender<Result<()>>>,
}

enum Ended {
    /// The `PubSub` was dropped.
    Stopped,
    Lost(String),
}

struct Driver {
    config: Config,
    connector: Arc<dyn Connector>,
    wanted: [BTreeSet<Bytes>; 3],
    /// Subscriptions the server ended unasked, to report as events.
    unasked: Vec<(Kind, Bytes)>,
    expect: VecDeque<Expect>,
    rng: fastrand::Rng,
    events: mpsc::Sender<Result<Event>>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Driver {
    async fn run(mut self, mut conn: Connection) {
        loop {
            let reason = match self.serve(&mut conn).await {
                Ended::Stopped => return,
                Ended::Lost(reason) => reason,
            };
            tracing::debug!(%reason, "subscriber connection lost");
            if self.events.send(Ok(Event::Disconnected { reason })).await.is_err() {
                return;
            }
            let down_since = Instant::now();
            let mut attempts = 0;
            let early;
            (conn, early) = loop {
                tokio::time::sleep(self.config.backoff.delay(attempts, &mut self.rng)).await;
                attempts += 1;
                let Ok(mut fresh) = Connection::open(&self.config, &*self.connector).await else {
                    continue;
                };
                if self.resubscribe(&mut fresh).await.is_err() {
                    continue;
                }
                if let Ok(early) = self.await_confirmations(&mut fresh).await {
                    break (fresh, early);
                }
            };
            let back = Event::Reconnected { attempts, down_for: down_since.elapsed() };
            if self.events.send(Ok(back)).await.is_err() {
                return;
            }
            for message in early {
                if self.events.send(Ok(Event::Message(message))).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Reads a fresh connection until it has confirmed every re-issued
    /// subscription (so that `Reconnected` means subscribed again). Messages
    /// that arrive meanwhile, for subscriptions already confirmed, are kept
    /// to follow the event.
    async fn await_confirmations(&mut self, conn: &mut Connection) -> Result<Vec<Message>> {
        let mut early = Vec::new();
        while !self.expect.is_empty() {
            let read = tokio::time::timeout(self.config.response_timeout, conn.read()).await;
            let value = read.map_err(|_| Error::Io(std::io::ErrorKind::TimedOut.into()))??;
            early.extend(self.take(value));
        }
        Ok(early)
    }

    /// Re-issues every subscription; callers still waiting for a
    /// confirmation are answered by the new connection's.
    async fn resubscribe(&mut self, conn: &mut Connection) -> Result<()> {
        let mut waiting: Vec<_> = self.expect.drain(..).flat_map(|e| e.done).collect();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            if crate::planted::no_resubscribe() {
                break;
            }
            let names: Vec<Bytes> = self.wanted[kind.index()].iter().cloned().collect();
            if names.is_empty() {
                continue;
            }
            let verb = kind.verbs().0;
            let mut args: Vec<&[u8]> = vec![verb.as_bytes()];
            args.extend(names.iter().map(|n| n.as_ref()));
            conn.send(&args).await?;
            self.expect.push_back(Expect { verb, remaining: names.len(), done: Vec::new() });
        }
        match self.expect.back_mut() {
            Some(last) => last.done.append(&mut waiting),
            None => waiting.into_iter().for_each(|d| drop(d.send(Ok(())))),
        }
        Ok(())
    }

    async fn serve(&mut self, conn: &mut Connection) -> Ended {
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            let deadline = match ping_sent {
                Some(at) => at + self.config.response_timeout,
                None => last_heard + self.config.idle_ping,
            };
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None => return Ended::Stopped,
                    Some(command) => {
                        if let Err(e) = self.apply(command, conn).await {
                            return Ended::Lost(e.to_string());
                        }
                    }
                },
                frame = conn.read() => match frame {
                    Err(e) => return Ended::Lost(e.to_string()),
                    Ok(value) => {
                        last_heard = Instant::now();
                        ping_sent = None;
                        if !self.dispatch(value).await {
                            return Ended::Stopped;
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if ping_sent.is_some() {
                        return Ended::Lost("no answer to PING".into());
                    }
                    if let Err(e) = conn.send(&[b"PING"]).await {
                        return Ended::Lost(e.to_string());
                    }
                    ping_sent = Some(Instant::now());
                }
            }
        }
    }

    async fn apply(&mut self, command: Command, conn: &mut Connection) -> Result<()> {
        let (kind, names, done, subscribe) = match command {
            Command::Subscribe { kind, names, done } => (kind, names, done, true),
            Command::Unsubscribe { kind, names, done } => {
                let names = if names.is_empty() { self.wanted[kind.index()].iter().cloned().collect() } else { names };
                (kind, names, done, false)
            }
        };
        if names.is_empty() {
            let _ = done.send(Ok(()));
            return Ok(());
        }
        let wanted = &mut self.wanted[kind.index()];
        for n in &names {
            if subscribe {
                wanted.insert(n.clone());
            } else {
                // From here on its messages are dropped, even those already
                // on the wire.
                wanted.remove(n);
            }
        }
        let verb = if subscribe { kind.verbs().0 } else { kind.verbs().1 };
        let mut args: Vec<&[u8]> = vec![verb.as_bytes()];
        args.extend(names.iter().map(|n| n.as_ref()));
        self.expect.push_back(Expect { verb, remaining: names.len(), done: vec![done] });
        conn.send(&args).await
    }

    /// Handles one frame; false if the `PubSub` is gone.
    async fn dispatch(&mut self, value: Value) -> bool {
        let message = self.take(value);
        for (kind, name) in std::mem::take(&mut self.unasked) {
            if self.events.send(Ok(Event::Unsubscribed { kind, name })).await.is_err() {
                return false;
            }
        }
        match message {
            Some(message) => self.events.send(Ok(Event::Message(message))).await.is_ok(),
            None => true,
        }
    }

    /// Takes one frame in: a confirmation or refusal answers its caller; a
    /// message for a subscription still wanted comes back.
    fn take(&mut self, value: Value) -> Option<Message> {
        if let Value::Error(e) = value {
            // A refused (un)subscribe: fail its caller.
            if let Some(front) = self.expect.pop_front() {
                for d in front.done {
                    let _ = d.send(Err(Error::Server(e.clone())));
                }
            }
            return None;
        }
        let items = value.items()?;
        let kind_word = items.first().and_then(Value::as_bytes).map(|b| b.to_ascii_lowercase());
        let bytes = |i: usize| items.get(i).and_then(Value::as_bytes).map(Bytes::copy_from_slice);
        let message =
            match kind_word.as_deref() {
                Some(b"message") => bytes(1).zip(bytes(2)).map(|(channel, payload)| Message {
                    kind: Kind::Channel,
                    channel,
                    pattern: None,
                    payload,
                }),
                Some(b"smessage") => bytes(1).zip(bytes(2)).map(|(channel, payload)| Message {
                    kind: Kind::Shard,
                    channel,
                    pattern: None,
                    payload,
                }),
                Some(b"pmessage") => bytes(1).zip(bytes(2)).zip(bytes(3)).map(|((pattern, channel), payload)| {
                    Message { kind: Kind::Pattern, channel, pattern: Some(pattern), payload }
                }),
                Some(verb) => {
                    self.confirmed(verb, bytes(1));
                    None
                }
                None => None,
            };
        let message = message?;
        let key = message.pattern.as_ref().unwrap_or(&message.channel);
        self.wanted[message.kind.index()].contains(key).then_some(message)
    }

    fn confirmed(&mut self, verb: &[u8], name: Option<Bytes>) {
        let asked = self.expect.front().is_some_and(|front| front.verb.as_bytes() == verb);
        let leaving = match verb {
            b"unsubscribe" => Some(Kind::Channel),
            b"punsubscribe" => Some(Kind::Pattern),
            b"sunsubscribe" => Some(Kind::Shard),
            _ => None,
        };
        if let (false, Some(kind), Some(name)) = (asked, leaving, name) {
            // Ended by the server: no longer wanted, and said so.
            if self.wanted[kind.index()].remove(&name) {
                self.unasked.push((kind, name));
            }
            return;
        }
        let Some(front) = self.expect.front_mut() else {
            return;
        };
        if front.verb.as_bytes() != verb {
            return;
        }
        front.remaining -= 1;
        if front.remaining == 0 {
            let front = self.expect.pop_front().expect("front exists");
            for d in front.done {
                let _ = d.send(Ok(()));
            }
        }
    }
}
