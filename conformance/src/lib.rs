//! herald-conformance: checks a RESP server against SPEC.md from outside.
//!
//! Each clause of SPEC.md that can be observed over the wire has a check
//! here, named in the clause; the others are listed as not applicable,
//! with the reason. A check talks to the server only through connections
//! of its own, uses channel names no one else does (a per-run nonce), and
//! puts back every setting it changes, so the kit can be pointed at any
//! server, Herald or not, without a restart.
//!
//! What this crate deliberately does not know: anything of Herald's
//! source. It links herald-client for its `Value` and request encoder
//! only; a server is judged by what it sends.

mod checks;
mod cluster;
mod conn;
mod delivery;
mod limits;
mod security;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checks::{clauses, Clause};

use conn::Conn;

/// The server under test.
#[derive(Clone)]
pub struct Target {
    /// host:port
    pub addr: String,
    /// AUTH's user (with `password`), if not the default.
    pub user: Option<String>,
    /// AUTH's password, if the server needs one.
    pub password: Option<String>,
    /// TLS settings, if the address is a TLS port.
    pub tls: Option<Tls>,
    /// What every channel name of this run starts with.
    pub nonce: String,
    /// What seeded inputs (7.1's garbage) are drawn from; printed with any
    /// failure that used it, `--seed` replays it.
    pub seed: u64,
    /// Every node of the cluster `addr` belongs to (`--cluster-nodes`),
    /// for §9; empty: not a cluster, §9 is not applicable.
    pub cluster: Vec<String>,
}

/// A TLS client configuration and the name the server's certificate has.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: rustls_pki_types::ServerName<'static>,
}

impl Target {
    /// A target at `addr` with a fresh nonce.
    pub fn new(addr: impl Into<String>) -> Target {
        let nonce = format!("hc{:08x}", fastrand::u32(..));
        let seed = fastrand::u64(..);
        Target { addr: addr.into(), user: None, password: None, tls: None, nonce, seed, cluster: Vec::new() }
    }

    /// The AUTH command for the target's credentials, if it has any.
    pub(crate) fn auth(&self) -> Option<Vec<&str>> {
        let password = self.password.as_deref()?;
        let mut args = vec!["AUTH"];
        args.extend(self.user.as_deref());
        args.push(password);
        Some(args)
    }

    /// A channel name of this run.
    pub(crate) fn channel(&self, name: &str) -> String {
        format!("{}:{name}", self.nonce)
    }
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The evidence: what was sent and what came back.
    Fail(String),
    /// Why the clause cannot be judged here.
    NotApplicable(String),
}

impl Verdict {
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::NotApplicable(_) => "n/a",
        }
    }
}

/// A check's result: `Err` carries a failure or a reason it does not apply.
pub(crate) type Outcome = Result<(), Verdict>;

impl From<String> for Verdict {
    fn from(evidence: String) -> Verdict {
        Verdict::Fail(evidence)
    }
}

/// Fails the check with the evidence unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($evidence:tt)+) => {
        if !$cond {
            return Err($crate::Verdict::Fail(format!($($evidence)+)));
        }
    };
}
pub(crate) use ensure;

/// One clause's result.
pub struct Report {
    pub clause: &'static Clause,
    pub verdict: Verdict,
    pub took: Duration,
}

/// Runs the clauses whose id is in `only` (a clause id, or a section
/// number for all its clauses; everything if empty), one after another.
pub fn run(target: &Target, only: &[String], mut each: impl FnMut(&Report)) -> Vec<Report> {
    let mut reports = Vec::new();
    for clause in clauses() {
        if !only.is_empty() && !only.iter().any(|o| clause.id == o || clause.id.starts_with(&format!("{o}."))) {
            continue;
        }
        let started = Instant::now();
        let verdict = match &clause.check {
            checks::Check::Wire(check) => match check(target) {
                Ok(()) => Verdict::Pass,
                Err(verdict) => verdict,
            },
            checks::Check::Elsewhere(why) => Verdict::NotApplicable((*why).to_string()),
        };
        let report = Report { clause, verdict, took: started.elapsed() };
        each(&report);
        reports.push(report);
    }
    reports
}

/// Polls `probe` until it answers `Some`, failing once the reply timeout
/// passes. For state the server changes on its own schedule (cleanup after
/// a close, a timeout firing); every probe is a full round trip, which
/// paces the polling.
pub(crate) fn eventually<T>(mut probe: impl FnMut() -> Result<Option<T>, String>, what: &str) -> Result<T, Verdict> {
    let deadline = Instant::now() + conn::REPLY_TIMEOUT;
    loop {
        if let Some(found) = probe()? {
            return Ok(found);
        }
        if Instant::now() > deadline {
            return Err(Verdict::Fail(format!("{what}: not within {:?}", conn::REPLY_TIMEOUT)));
        }
    }
}

/// A setting changed for a check and put back when the check ends,
/// whatever its outcome, through a connection of its own opened first (so
/// it is not refused by a lowered `maxclients`) and subscribed (so a short
/// `timeout` does not close it). Not applicable if the server refuses CONFIG.
pub(crate) struct Setting {
    pub(crate) conn: Conn,
    name: String,
    old: String,
}

impl Setting {
    /// Reads `name`'s value, to be put back.
    pub(crate) fn keep(target: &Target, name: &str) -> Result<Setting, Verdict> {
        let mut conn = Conn::open(target)?;
        // RESP3 and subscribed: CONFIG still runs, `timeout` spares it.
        conn.hello3()?;
        conn.call(&["SUBSCRIBE", &target.channel("keeper")])?;
        let old = config_get(&mut conn, name)?;
        Ok(Setting { conn, name: name.into(), old })
    }

    /// Sets it to `value`.
    pub(crate) fn to(&mut self, value: &str) -> Outcome {
        self.conn
            .expect_ok(&["CONFIG", "SET", &self.name, value])
            .map_err(|e| Verdict::NotApplicable(format!("CONFIG SET {} refused: {e}", self.name)))
    }

    pub(crate) fn set(target: &Target, name: &str, value: &str) -> Result<Setting, Verdict> {
        let mut setting = Setting::keep(target, name)?;
        setting.to(value)?;
        Ok(setting)
    }
}

impl Drop for Setting {
    fn drop(&mut self) {
        let _ = self.conn.expect_ok(&["CONFIG", "SET", &self.name, &self.old]);
    }
}

/// A setting's value; not applicable if CONFIG GET is refused.
pub(crate) fn config_get(c: &mut Conn, name: &str) -> Result<String, Verdict> {
    let reply = c.call(&["CONFIG", "GET", name])?;
    let items: Vec<String> = match &reply.value {
        herald_client::Value::Array(items) => items.iter().filter_map(text).collect(),
        herald_client::Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [text(k), text(v)]).flatten().collect(),
        _ => return Err(Verdict::NotApplicable(format!("CONFIG GET {name} answered {}", reply.text()))),
    };
    match items.as_slice() {
        [_, value] => Ok(value.clone()),
        _ => Err(Verdict::NotApplicable(format!("CONFIG GET {name} answered {}", reply.text()))),
    }
}

/// A field of an INFO section, as text.
pub(crate) fn info_field(c: &mut Conn, section: &str, field: &str) -> Result<String, String> {
    let reply = c.call(&["INFO", section])?;
    let body = text(&reply.value).ok_or_else(|| format!("INFO answered {}", reply.text()))?;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
        .ok_or_else(|| format!("INFO {section} has no {field}"))
}

pub(crate) fn text(v: &herald_client::Value) -> Option<String> {
    v.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())
}
