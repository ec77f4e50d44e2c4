//! The list of connected clients: CLIENT LIST/KILL, INFO clients, and the
//! runtime settings every session follows.

use actix::prelude::*;
use futures_util::future::join_all;
use indexmap::IndexMap;

use crate::broker::ClientId;
use crate::config::Config;
use crate::session::{Describe, Drain, Kill, Session, SettingsChanged};

/// What CLIENT LIST shows of one connection.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub id: ClientId,
    pub addr: String,
    pub laddr: String,
    pub name: String,
    pub age_secs: u64,
    pub idle_secs: u64,
    pub flags: String,
    pub db: u32,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    pub multi: i64,
    pub omem: usize,
    pub cmd: String,
    pub resp: u8,
    pub lib_name: String,
    pub lib_ver: String,
}

impl ClientInfo {
    /// One line of CLIENT LIST / CLIENT INFO, fields in Redis 7.2's order.
    /// Buffer figures Herald does not keep are reported as Redis reports an
    /// idle connection's.
    pub fn line(&self) -> String {
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
             multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem={} tot-mem={} \
             events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.addr,
            self.laddr,
            self.name,
            self.age_secs,
            self.idle_secs,
            self.flags,
            self.db,
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.omem,
            self.omem,
            self.cmd,
            self.resp,
            self.lib_name,
            self.lib_ver
        )
    }

    pub fn is_pubsub(&self) -> bool {
        self.flags.contains('P')
    }
}

/// Holds every session's address and the runtime settings.
pub struct ClientRegistry {
    config: Config,
    sessions: IndexMap<ClientId, Addr<Session>>,
    total_connections: u64,
}

impl ClientRegistry {
    pub fn new(config: Config) -> Self {
        ClientRegistry { config, sessions: IndexMap::new(), total_connections: 0 }
    }
}

impl Actor for ClientRegistry {
    type Context = Context<Self>;
}

/// A new session; answers the settings it must follow, or `None` if
/// `maxclients` sessions are already connected (it is then not registered).
#[derive(Message)]
#[rtype(result = "Option<Config>")]
pub struct Register {
    pub id: ClientId,
    pub addr: Addr<Session>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Deregister(pub ClientId);

/// Every other client's info; the asking session adds its own (it is busy
/// waiting for this answer and cannot be asked).
#[derive(Message)]
#[rtype(result = "Vec<ClientInfo>")]
pub struct ListClients {
    pub except: ClientId,
}

/// Closes the given clients; answers how many existed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct KillClients(pub Vec<ClientId>);

#[derive(Message)]
#[rtype(result = "Config")]
pub struct GetConfig;

#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SetConfig(pub Vec<(String, String)>);

#[derive(Debug, Clone, Copy)]
pub struct RegistryStats {
    pub connected: usize,
    pub total_connections: u64,
}

#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct GetStats;

impl Handler<Register> for ClientRegistry {
    type Result = MessageResult<Register>;
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        self.total_connections += 1;
        if self.sessions.len() >= self.config.maxclients {
            return MessageResult(None);
        }
        self.sessions.insert(msg.id, msg.addr);
        MessageResult(Some(self.config.clone()))
    }
}

impl Handler<Deregister> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, Deregister(id): Deregister, _: &mut Context<Self>) {
        self.sessions.shift_remove(&id);
    }
}

impl Handler<ListClients> for ClientRegistry {
    type Result = ResponseFuture<Vec<ClientInfo>>;
    fn handle(&mut self, msg: ListClients, _: &mut Context<Self>) -> Self::Result {
        let asks: Vec<_> =
            self.sessions.iter().filter(|(id, _)| **id != msg.except).map(|(_, a)| a.send(Describe)).collect();
        Box::pin(async move { join_all(asks).await.into_iter().filter_map(Result::ok).collect() })
    }
}

impl Handler<KillClients> for ClientRegistry {
    type Result = usize;
    fn handle(&mut self, KillClients(ids): KillClients, _: &mut Context<Self>) -> usize {
        let mut n = 0;
        for id in ids {
            if let Some(addr) = self.sessions.get(&id) {
                addr.do_send(Kill);
                n += 1;
            }
        }
        n
    }
}

impl Handler<GetConfig> for ClientRegistry {
    type Result = MessageResult<GetConfig>;
    fn handle(&mut self, _: GetConfig, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.config.clone())
    }
}

impl Handler<SetConfig> for ClientRegistry {
    type Result = Result<(), String>;
    fn handle(&mut self, SetConfig(pairs): SetConfig, _: &mut Context<Self>) -> Self::Result {
        // All or nothing, as Redis' multi-argument CONFIG SET.
        let mut next = self.config.clone();
        for (name, value) in &pairs {
            next.set(name, value)?;
        }
        self.config = next;
        for addr in self.sessions.values() {
            addr.do_send(SettingsChanged(self.config.clone()));
        }
        Ok(())
    }
}

impl Handler<GetStats> for ClientRegistry {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RegistryStats { connected: self.sessions.len(), total_connections: self.total_connections })
    }
}

/// Shutdown: every session writes what it has queued and closes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DrainAll;

impl Handler<DrainAll> for ClientRegistry {
    type Result = ();
    fn handle(&mut self, _: DrainAll, _: &mut Context<Self>) {
        for addr in self.sessions.values() {
            addr.do_send(Drain);
        }
    }
}
