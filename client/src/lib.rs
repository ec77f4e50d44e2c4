//! A Rust client for Herald's pub/sub (and Redis'): publish, subscribe to
//! channels, patterns and shard channels as a stream, and keep subscribed
//! across server restarts.
//!
//! ```no_run
//! # async fn demo() -> herald_client::Result<()> {
//! use herald_client::{Client, Event};
//!
//! let client = Client::connect("127.0.0.1:6379").await?;
//! let mut events = client.psubscribe(&["events:*:payment_*"]).await?;
//! client.publish("events:orders:payment_failed", "order 42").await?;
//! while let Some(event) = events.next().await {
//!     match event? {
//!         Event::Message(m) => println!("{:?} on {:?}", m.payload, m.channel),
//!         // Messages published while disconnected were missed.
//!         Event::Disconnected { .. } | Event::Reconnected { .. } => {}
//!         // The server ended a subscription (a cluster slot moved).
//!         Event::Unsubscribed { .. } => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Guarantees (Herald's SPEC.md §6): a subscriber never sees a message twice,
//! sees each publisher's messages in order, and after a lost connection
//! sees `Disconnected`, then `Reconnected` before any newer message.

#![warn(missing_docs)]

mod client;
mod cluster;
mod config;
mod connection;
mod error;
#[doc(hidden)]
pub mod planted;
mod pubsub;
mod transport;
mod value;

pub use client::Client;
pub use cluster::{slot_of, ClusterClient, ClusterPubSub};
pub use config::{Backoff, Config};
pub use connection::{encode_command, encode_command_into};
pub use error::{Error, Result};
pub use pubsub::{Event, Kind, Message, PubSub};
#[cfg(feature = "tls")]
pub use transport::TlsConnector;
pub use transport::{BoxStream, ConnectFuture, Connector, Stream, TcpConnector};
pub use value::Value;
