//! Herald: a Redis-compatible pub/sub broker made of actix actors.
//!
//! Start with [`server`] (how connections become [`session::Session`]s),
//! then [`cmd`] (what each command does) and [`broker`] (where messages go).

pub mod acl;
pub mod broker;
pub mod cmd;
pub mod config;
pub mod diagnostics;
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod memory;
pub mod metrics;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod session;
pub mod stats;
pub mod tls;
