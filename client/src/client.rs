//! Commands over one connection, re-opened on the next call after it broke.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::pubsub::PubSub;
use crate::transport::{Connector, TcpConnector};
use crate::value::Value;

/// A Herald (or Redis) client for publishing and pub/sub queries; cheap to
/// clone, and clones share one connection.
///
/// A command whose connection fails returns the error; it is never
/// retried, since a PUBLISH may have reached the server before the failure
/// and a retry could deliver it twice. The next call reconnects.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    connector: Arc<dyn Connector>,
    conn: Mutex<Option<Connection>>,
}

impl Client {
    /// Connects to `addr` (`host:port`) with default settings.
    pub async fn connect(addr: impl Into<String>) -> Result<Client> {
        Client::with_config(Config::new(addr)).await
    }

    /// Connects over TCP with the given settings.
    pub async fn with_config(config: Config) -> Result<Client> {
        Client::with_connector(config, Arc::new(TcpConnector)).await
    }

    /// Connects through `connector` (TLS, or the simulator's network).
    pub async fn with_connector(config: Config, connector: Arc<dyn Connector>) -> Result<Client> {
        let conn = Connection::open(&config, &*connector).await?;
        Ok(Client { inner: Arc::new(Inner { config, connector, conn: Mutex::new(Some(conn)) }) })
    }

    /// Sends any command and returns its reply; error replies become
    /// [`Error::Server`].
    pub async fn command(&self, args: &[&[u8]]) -> Result<Value> {
        let mut slot = self.inner.conn.lock().await;
        if slot.is_none() {
            *slot = Some(Connection::open(&self.inner.config, &*self.inner.connector).await?);
        }
        let conn = slot.as_mut().expect("connected above");
        let exchange = async {
            conn.send(args).await?;
            conn.read().await
        };
        match tokio::time::timeout(self.inner.config.response_timeout, exchange).await {
            Ok(Ok(Value::Error(e))) => Err(Error::Server(e)),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *slot = None;
                Err(e)
            }
            Err(_) => {
                // The reply may still come; this connection is out of step.
                *slot = None;
                Err(Error::Timeout)
            }
        }
    }

    async fn integer(&self, args: &[&[u8]]) -> Result<i64> {
        let reply = self.command(args).await?;
        reply.as_int().ok_or_else(|| Error::Protocol(format!("expected an integer, got {reply:?}")))
    }

    /// Publishes `payload` on `channel`; returns how many subscriptions got it.
    pub async fn publish(&self, channel: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<usize> {
        Ok(self.integer(&[b"PUBLISH", channel.as_ref(), payload.as_ref()]).await? as usize)
    }

    /// Publishes on a shard channel.
    pub async fn spublish(&self, channel: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<usize> {
        Ok(self.integer(&[b"SPUBLISH", channel.as_ref(), payload.as_ref()]).await? as usize)
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<()> {
        self.command(&[b"PING"]).await.map(drop)
    }

    /// Active channels, optionally only those matching a glob pattern.
    pub async fn pubsub_channels(&self, pattern: Option<&str>) -> Result<Vec<Bytes>> {
        let reply = match pattern {
            Some(p) => self.command(&[b"PUBSUB", b"CHANNELS", p.as_bytes()]).await?,
            None => self.command(&[b"PUBSUB", b"CHANNELS"]).await?,
        };
        let items = reply.items().ok_or_else(|| Error::Protocol(format!("expected an array, got {reply:?}")))?;
        Ok(items.iter().filter_map(Value::as_bytes).map(Bytes::copy_from_slice).collect())
    }

    /// Subscriber counts of the given channels (pattern subscriptions not
    /// included), in the order asked.
    pub async fn pubsub_numsub<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<Vec<(Bytes, usize)>> {
        let mut args: Vec<&[u8]> = vec![b"PUBSUB", b"NUMSUB"];
        args.extend(channels.iter().map(|c| c.as_ref()));
        let reply = self.command(&args).await?;
        let items = reply.items().ok_or_else(|| Error::Protocol(format!("expected an array, got {reply:?}")))?;
        items
            .chunks(2)
            .map(|pair| match pair {
                [name, Value::Int(n)] if name.as_bytes().is_some() => {
                    Ok((Bytes::copy_from_slice(name.as_bytes().unwrap()), *n as usize))
                }
                other => Err(Error::Protocol(format!("bad NUMSUB entry {other:?}"))),
            })
            .collect()
    }

    /// The number of distinct patterns subscribed to.
    pub async fn pubsub_numpat(&self) -> Result<usize> {
        Ok(self.integer(&[b"PUBSUB", b"NUMPAT"]).await? as usize)
    }

    /// A new subscriber connection with the same settings.
    pub async fn pubsub(&self) -> Result<PubSub> {
        PubSub::connect(self.inner.config.clone(), self.inner.connector.clone()).await
    }

    /// A subscriber already subscribed to `channels`.
    pub async fn subscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<PubSub> {
        let ps = self.pubsub().await?;
        ps.subscribe(channels).await?;
        Ok(ps)
    }

    /// A subscriber already subscribed to `patterns`.
    pub async fn psubscribe<N: AsRef<[u8]>>(&self, patterns: &[N]) -> Result<PubSub> {
        let ps = self.pubsub().await?;
        ps.psubscribe(patterns).await?;
        Ok(ps)
    }

    /// A subscriber already subscribed to shard `channels`.
    pub async fn ssubscribe<N: AsRef<[u8]>>(&self, channels: &[N]) -> Result<PubSub> {
        let ps = self.pubsub().await?;
        ps.ssubscribe(channels).await?;
        Ok(ps)
    }
}
