//! A connection's protocol state, as plain data: what commands read and
//! set, and what RESET returns to. No I/O, no actor, no timers here.

use std::sync::Arc;

use bytes::Bytes;

use crate::acl::User;

/// MULTI state: commands queued for EXEC, and whether one was refused.
#[derive(Default)]
pub(crate) struct Multi {
    pub queued: Vec<Vec<Bytes>>,
    pub failed: bool,
}

/// CLIENT TRACKING's state. Herald keeps no keys, so nothing is ever
/// invalidated (SPEC §5); the state is kept so the replies are Redis'.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracking {
    pub on: bool,
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
    /// CLIENT CACHING for the next command (OPTIN: yes, OPTOUT: no).
    pub caching: Option<bool>,
}

/// Who the client is and how it talks: protocol version, name, database,
/// MULTI, reply mode, user and authentication, tracking, MONITOR.
pub(crate) struct ClientState {
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: String,
    pub lib_ver: String,
    pub db: u32,
    pub multi: Option<Multi>,
    /// CLIENT REPLY OFF, and SKIP (for the next command only).
    pub replies_off: bool,
    pub skip_next_reply: bool,
    /// Who this connection is (the default user until AUTH), and whether
    /// it may run commands other than AUTH/HELLO yet.
    pub user: Arc<User>,
    pub authenticated: bool,
    /// What RESET returns to (the registry keeps it current).
    pub default_user: Arc<User>,
    /// Whether `user` may PUBLISH and SPUBLISH (to channels it may use),
    /// so pipelined runs can skip the per-command check.
    pub may_publish: bool,
    pub tracking: Tracking,
    /// Protected from `maxmemory-clients` eviction (CLIENT NO-EVICT).
    pub no_evict: bool,
    /// In MONITOR mode (see `cmd::diagnostics`).
    pub monitor: bool,
}

impl Default for ClientState {
    fn default() -> Self {
        let default_user = Arc::new(User::new("default"));
        ClientState {
            resp3: false,
            name: None,
            lib_name: String::new(),
            lib_ver: String::new(),
            db: 0,
            multi: None,
            replies_off: false,
            skip_next_reply: false,
            user: default_user.clone(),
            authenticated: false,
            default_user,
            may_publish: false,
            tracking: Tracking::default(),
            no_evict: false,
            monitor: false,
        }
    }
}

impl ClientState {
    /// Runs as `user` from now on.
    pub(crate) fn set_user(&mut self, user: Arc<User>) {
        let may = |name| crate::redis::find(name).is_some_and(|c| user.may_run(name, &c.acl));
        self.may_publish = may("publish") && may("spublish");
        self.user = user;
    }

    /// A new connection's (and RESET's) identity: the default user,
    /// authenticated if it needs no password.
    pub(crate) fn log_in_as_default(&mut self) {
        self.authenticated = self.default_user.nopass && self.default_user.enabled;
        self.set_user(self.default_user.clone());
    }

    /// RESET, as Redis 7.0's `clearClientConnectionState`: RESP2, database
    /// 0, no transaction, replies on, tracking and MONITOR off, no name,
    /// the default user. CLIENT NO-EVICT and the library name stay, as in
    /// Redis. (The caller leaves the subscriptions and the monitor list.)
    pub(crate) fn reset(&mut self) {
        self.resp3 = false;
        self.db = 0;
        self.multi = None;
        self.replies_off = false;
        self.skip_next_reply = false;
        self.tracking = Tracking::default();
        self.monitor = false;
        self.name = None;
        self.log_in_as_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field RESET touches is back to a new connection's value, and
    /// those Redis keeps are kept (RESET once forgot the name, tracking and
    /// MONITOR: each field was re-listed by hand in the command).
    #[test]
    fn reset_returns_to_a_new_connections_state() {
        let fresh = {
            let mut s = ClientState::default();
            s.log_in_as_default();
            s
        };
        let mut s = ClientState {
            resp3: true,
            name: Some(Bytes::from_static(b"x")),
            db: 3,
            multi: Some(Multi::default()),
            replies_off: true,
            skip_next_reply: true,
            user: Arc::new(User::new("alice")),
            tracking: Tracking { on: true, ..Tracking::default() },
            monitor: true,
            no_evict: true,
            lib_name: "redis-py".into(),
            ..ClientState::default()
        };
        s.reset();
        assert!(!s.resp3 && s.name.is_none() && s.db == 0 && s.multi.is_none());
        assert!(!s.replies_off && !s.skip_next_reply && !s.tracking.on && !s.monitor);
        assert_eq!(s.user.name, fresh.user.name);
        assert_eq!(s.authenticated, fresh.authenticated);
        assert_eq!(s.may_publish, fresh.may_publish);
        // Kept, as Redis keeps them.
        assert!(s.no_evict);
        assert_eq!(s.lib_name, "redis-py");
    }
}
