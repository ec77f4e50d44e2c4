//! A deterministic stand-in for etcd, as far as Herald's membership uses
//! it (`herald::MembershipStore`): revisions, keys bound to leases that
//! expire on the simulated clock, a wait for a change, an election and a
//! coordinator's conditional write. `Coordination` is the plain state;
//! `serve` puts it on a turmoil host, one request per connection, each
//! request and answer a line of hex-encoded words (`SimStore` speaks it).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;
use turmoil::net::TcpListener;

pub const PORT: u16 = 2379;
/// The election's keys: `coordinator/<lease>`.
const ELECTION: &str = "coordinator/";

#[derive(Debug, Clone)]
struct Kv {
    value: String,
    mod_revision: i64,
    create_revision: i64,
    lease: i64,
}

/// The keys a lease took with it: (key, value).
pub type Keys = Vec<(String, String)>;
/// Told of each lease as it expires, with its keys.
pub type OnExpiry = Rc<dyn Fn(i64, &[(String, String)])>;

/// The stand-in's state.
#[derive(Debug, Default)]
pub struct Coordination {
    revision: i64,
    kv: BTreeMap<String, Kv>,
    /// Each lease's TTL and deadline (simulated time).
    leases: BTreeMap<i64, (Duration, Duration)>,
    next_lease: i64,
    /// Leases expired: when, and the keys they took with them.
    pub expired: Vec<(Duration, i64, Keys)>,
}

/// What a coordinator's conditional write did (the store's `Written`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Done,
    Stale,
    NotLeader,
}

impl Coordination {
    pub fn grant(&mut self, ttl: Duration, now: Duration) -> i64 {
        self.next_lease += 1;
        self.leases.insert(self.next_lease, (ttl, now + ttl));
        self.next_lease
    }

    /// The TTL from now, or `None` if the lease is gone.
    pub fn keep_alive(&mut self, lease: i64, now: Duration) -> Option<Duration> {
        let (ttl, deadline) = self.leases.get_mut(&lease)?;
        *deadline = now + *ttl;
        Some(*ttl)
    }

    /// After a restart, as etcd's new leader does: every lease gets its
    /// whole TTL again, so none expires for the time the service was away.
    pub fn restarted(&mut self, now: Duration) {
        for (ttl, deadline) in self.leases.values_mut() {
            *deadline = now + *ttl;
        }
    }

    pub fn revoke(&mut self, lease: i64) -> Keys {
        self.leases.remove(&lease);
        let gone: Vec<String> = self.kv.iter().filter(|(_, kv)| kv.lease == lease).map(|(k, _)| k.clone()).collect();
        if !gone.is_empty() {
            self.revision += 1;
        }
        gone.into_iter().map(|k| (k.clone(), self.kv.remove(&k).expect("listed").value)).collect()
    }

    /// Ends the leases past their deadline; what each took.
    pub fn expire(&mut self, now: Duration) -> Vec<(i64, Keys)> {
        let due: Vec<i64> = self.leases.iter().filter(|(_, (_, d))| *d <= now).map(|(l, _)| *l).collect();
        let out: Vec<(i64, Keys)> = due.into_iter().map(|l| (l, self.revoke(l))).collect();
        for (lease, keys) in &out {
            self.expired.push((now, *lease, keys.clone()));
        }
        out
    }

    pub fn put(&mut self, key: &str, value: &str, lease: i64) -> Result<(), String> {
        if lease != 0 && !self.leases.contains_key(&lease) {
            return Err("lease not found".into());
        }
        self.revision += 1;
        let create_revision = self.kv.get(key).map_or(self.revision, |kv| kv.create_revision);
        let kv = Kv { value: value.into(), mod_revision: self.revision, create_revision, lease };
        self.kv.insert(key.into(), kv);
        Ok(())
    }

    /// (revision, [(key, value, mod revision)]).
    pub fn snapshot(&self) -> (i64, Vec<(String, String, i64)>) {
        let entries = self.kv.iter().map(|(k, kv)| (k.clone(), kv.value.clone(), kv.mod_revision)).collect();
        (self.revision, entries)
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Puts `lease`'s candidate key if it has none; (key, its creation).
    pub fn candidate(&mut self, lease: i64, value: &str) -> Result<(String, i64), String> {
        let key = format!("{ELECTION}{lease:x}");
        if !self.kv.contains_key(&key) {
            self.put(&key, value, lease)?;
        }
        Ok((key.clone(), self.kv[&key].create_revision))
    }

    /// Whether `key` is the oldest candidate still there.
    pub fn leads(&self, key: &str) -> bool {
        let oldest = self
            .kv
            .iter()
            .filter(|(k, _)| k.starts_with(ELECTION))
            .min_by_key(|(_, kv)| kv.create_revision)
            .map(|(k, _)| k.as_str());
        oldest == Some(key)
    }

    pub fn write_as_leader(&mut self, leader: (&str, i64), key: &str, value: &str, expected: i64) -> Write {
        let leads = self.kv.get(leader.0).is_some_and(|kv| kv.create_revision == leader.1);
        if !leads {
            return Write::NotLeader;
        }
        if self.kv.get(key).map_or(0, |kv| kv.mod_revision) != expected {
            return Write::Stale;
        }
        self.put(key, value, 0).expect("no lease");
        Write::Done
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A line of words, hex-encoded.
pub fn line(words: &[&str]) -> String {
    let mut out = words.iter().map(|w| hex(w)).collect::<Vec<_>>().join(" ");
    out.push('\n');
    out
}

/// The words of a line.
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(unhex).collect()
}

/// Runs the stand-in on this host until the host stops; `state` is
/// shared with the simulation's checks. A task ends leases on time and
/// `on_expiry` hears each as it goes.
pub async fn serve(state: Rc<RefCell<Coordination>>, on_expiry: OnExpiry) -> Result<(), Box<dyn std::error::Error>> {
    state.borrow_mut().restarted(turmoil::elapsed());
    let changed = Rc::new(Notify::new());
    {
        let (state, changed) = (state.clone(), changed.clone());
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let gone = state.borrow_mut().expire(turmoil::elapsed());
                for (lease, keys) in &gone {
                    on_expiry(*lease, keys);
                }
                if !gone.is_empty() {
                    changed.notify_waiters();
                }
            }
        });
    }
    let listener = TcpListener::bind(("0.0.0.0", PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let (state, changed) = (state.clone(), changed.clone());
        tokio::task::spawn_local(async move {
            let (read, mut write) = tokio::io::split(stream);
            let mut request = String::new();
            if BufReader::new(read).read_line(&mut request).await.is_err() {
                return;
            }
            let answer = answer(&words(&request), &state, &changed).await;
            let _ = write.write_all(answer.as_bytes()).await;
        });
    }
}

async fn answer(request: &[String], state: &Rc<RefCell<Coordination>>, changed: &Notify) -> String {
    let now = turmoil::elapsed;
    let arg = |i: usize| request.get(i).map(String::as_str).unwrap_or_default();
    let int = |i: usize| arg(i).parse::<i64>().unwrap_or_default();
    let reply = match arg(0) {
        "GRANT" => {
            let ttl = Duration::from_millis(int(1) as u64);
            let lease = state.borrow_mut().grant(ttl, now());
            line(&[&lease.to_string(), &ttl.as_millis().to_string()])
        }
        "KEEPALIVE" => {
            let ttl = state.borrow_mut().keep_alive(int(1), now());
            line(&[&ttl.map_or(0, |t| t.as_millis()).to_string()])
        }
        "REVOKE" => {
            state.borrow_mut().revoke(int(1));
            line(&["OK"])
        }
        "PUT" => match state.borrow_mut().put(arg(1), arg(2), int(3)) {
            Ok(()) => line(&["OK"]),
            Err(e) => line(&["ERR", &e]),
        },
        "SNAPSHOT" => {
            let (revision, entries) = state.borrow().snapshot();
            let mut words = vec![revision.to_string()];
            for (k, v, r) in entries {
                words.extend([k, v, r.to_string()]);
            }
            line(&words.iter().map(String::as_str).collect::<Vec<_>>())
        }
        "CHANGED" => loop {
            let notified = changed.notified();
            let revision = state.borrow().revision();
            if revision > int(1) {
                break line(&[&revision.to_string()]);
            }
            notified.await;
        },
        "CAMPAIGN" => {
            let candidate = state.borrow_mut().candidate(int(1), arg(2));
            changed.notify_waiters();
            match candidate {
                Err(e) => line(&["ERR", &e]),
                Ok((key, created)) => loop {
                    let notified = changed.notified();
                    if !state.borrow().kv_has(&key) {
                        break line(&["ERR", "lease gone"]);
                    }
                    if state.borrow().leads(&key) {
                        break line(&[&key, &created.to_string()]);
                    }
                    notified.await;
                },
            }
        }
        "WRITE" => {
            let done = state.borrow_mut().write_as_leader((arg(1), int(2)), arg(3), arg(4), int(5));
            line(&[&format!("{done:?}")])
        }
        other => line(&["ERR", &format!("unknown {other}")]),
    };
    if matches!(arg(0), "REVOKE" | "PUT" | "WRITE") {
        changed.notify_waiters();
    }
    reply
}

impl Coordination {
    fn kv_has(&self, key: &str) -> bool {
        self.kv.contains_key(key)
    }
}
