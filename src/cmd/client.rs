//! CLIENT ID | SETNAME | GETNAME | SETINFO | INFO | LIST | KILL | REPLY | NO-EVICT |
//! PAUSE | UNPAUSE | TRACKING | TRACKINGINFO | GETREDIR | CACHING | UNBLOCK | HELP.

use actix::Context;
use bytes::Bytes;

use super::connection::valid_client_name;
use super::Spec;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::registry::{ClientInfo, ClientPause, KillClients, ListClients, SetPause};
use crate::session::{wait_for, Flow, Session, Tracking};

const fn sub(
    name: &'static str,
    arity: i32,
    since: &'static str,
    summary: &'static str,
    args: &'static str,
    run: super::Run,
) -> Spec {
    Spec { since, summary, args, ..Spec::new(name, arity, "connection", run) }
}

static SUBCOMMANDS: [Spec; 17] = [
    sub("id", 2, "5.0.0", "Returns the client ID for the current connection", "", id),
    sub("setname", 3, "2.6.9", "Set the current connection name", "connection-name", setname),
    sub("getname", 2, "2.6.9", "Get the current connection name", "", getname),
    // Redis 7.2's, which 7.0.15's table lacks.
    Spec {
        flags: &["noscript", "loading", "stale"],
        acl: &["@slow", "@connection"],
        ..sub("setinfo", 4, "7.2.0", "Set client or connection specific info", "attr value", setinfo)
    },
    sub("info", 2, "6.2.0", "Returns information about the current client connection.", "", info),
    sub("list", -2, "2.4.0", "Get the list of client connections", "[TYPE type] [ID client-id...]", list),
    sub("kill", -3, "2.4.0", "Kill the connection of a client", "filter...", kill),
    sub("reply", 3, "3.2.0", "Instruct the server whether to reply to commands", "ON|OFF|SKIP", reply),
    sub("no-evict", 3, "7.0.0", "Set client eviction mode for the current connection", "ON|OFF", no_evict),
    sub("help", 2, "5.0.0", "Show helpful text about the different subcommands", "", super::help),
    sub("pause", -3, "3.0.0", "Stop processing commands from clients for some time", "timeout [WRITE|ALL]", pause),
    sub("unpause", 2, "6.2.0", "Resume processing of clients that were paused", "", unpause),
    sub(
        "tracking",
        -3,
        "6.0.0",
        "Enable or disable server assisted client side caching support",
        "ON|OFF [REDIRECT client-id] [PREFIX prefix...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
        tracking,
    ),
    sub(
        "trackinginfo",
        2,
        "6.2.0",
        "Return information about server assisted client side caching for the current connection",
        "",
        trackinginfo,
    ),
    sub("getredir", 2, "6.0.0", "Get tracking notifications redirection client ID if any", "", getredir),
    sub("caching", 3, "6.0.0", "Instruct the server about tracking or not keys in the next request", "YES|NO", caching),
    sub(
        "unblock",
        -3,
        "5.0.0",
        "Unblock a client blocked in a blocking command from a different connection",
        "client-id [TIMEOUT|ERROR]",
        unblock,
    ),
];

pub(crate) fn spec() -> Spec {
    Spec {
        since: "2.4.0",
        summary: "A container for client connection commands",
        help: HELP,
        ..Spec::container("client", "connection", &SUBCOMMANDS)
    }
}

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

fn id(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Int(s.id as i64));
    Flow::Done
}

fn setname(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if !valid_client_name(&args[2]) {
        s.error("ERR Client names cannot contain spaces, newlines or special characters.");
    } else {
        s.state.name = (!args[2].is_empty()).then(|| args[2].clone());
        s.reply(Reply::ok());
    }
    Flow::Done
}

fn getname(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let name = s.state.name.clone().map_or(Reply::Nil, Reply::Bulk);
    s.reply(name);
    Flow::Done
}

fn setinfo(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let attr = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    let value = String::from_utf8_lossy(&args[3]).into_owned();
    if attr != "lib-name" && attr != "lib-ver" {
        s.error(format!("ERR Unrecognized option '{}'", super::c_text(&args[2], usize::MAX)));
    } else if !valid_client_name(value.as_bytes()) {
        s.error(format!("ERR {attr} cannot contain spaces, newlines or special characters."));
    } else {
        if attr == "lib-name" {
            s.state.lib_name = value;
        } else {
            s.state.lib_ver = value;
        }
        s.reply(Reply::ok());
    }
    Flow::Done
}

fn info(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let line = s.info().line();
    s.reply(Reply::Verbatim(Bytes::from(line)));
    Flow::Done
}

/// CLIENT LIST's and KILL's `TYPE` values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    /// Master or replica: Herald has none.
    Replication,
}

impl ClientType {
    fn parse(name: &[u8]) -> Option<ClientType> {
        match name.to_ascii_lowercase().as_slice() {
            b"normal" => Some(ClientType::Normal),
            b"pubsub" => Some(ClientType::Pubsub),
            b"master" | b"replica" | b"slave" => Some(ClientType::Replication),
            _ => None,
        }
    }

    fn matches(self, c: &ClientInfo) -> bool {
        match self {
            ClientType::Normal => !c.is_pubsub(),
            ClientType::Pubsub => c.is_pubsub(),
            ClientType::Replication => false,
        }
    }
}

/// Every client's info, this session's included, in id order.
fn all_clients(s: &Session) -> impl std::future::Future<Output = Vec<ClientInfo>> {
    let me = s.info();
    let others = s.hub.clients.send(ListClients { except: s.id });
    async move {
        let mut all = others.await.unwrap_or_default();
        all.push(me);
        all.sort_by_key(|c| c.id);
        all
    }
}

fn list(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let mut kind = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
        if opt == "type" && i + 1 < args.len() {
            let Some(t) = ClientType::parse(&args[i + 1]) else {
                s.error(format!("ERR Unknown client type '{}'", super::c_text(&args[i + 1], usize::MAX)));
                return Flow::Done;
            };
            kind = Some(t);
            i += 2;
        } else if opt == "id" && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                match parse_i64(a).filter(|n| *n > 0) {
                    Some(n) => v.push(n as u64),
                    None => {
                        s.error("ERR Invalid client ID");
                        return Flow::Done;
                    }
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            s.error("ERR syntax error");
            return Flow::Done;
        }
    }
    wait_for(all_clients(s), move |all, s: &mut Session, _| {
        let text: String = all
            .iter()
            .filter(|c| kind.is_none_or(|k| k.matches(c)))
            .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
            .map(ClientInfo::line)
            .collect();
        s.reply(Reply::Verbatim(Bytes::from(text)));
    })
}

#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    kind: Option<ClientType>,
    user: Option<String>,
    skip_me: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.id.is_none_or(|id| id == c.id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr)
            && self.kind.is_none_or(|k| k.matches(c))
            && self.user.as_ref().is_none_or(|u| *u == c.user)
    }

    /// The filters, checked as Redis checks them (a user must exist: that
    /// is asked of the registry, in `kill`).
    fn parse(args: &[Bytes]) -> Result<KillFilter, String> {
        let mut f = KillFilter { skip_me: true, ..Default::default() };
        for pair in args.chunks(2) {
            let [opt, value] = pair else {
                return Err("ERR syntax error".into());
            };
            let opt = String::from_utf8_lossy(opt).to_ascii_lowercase();
            let value = String::from_utf8_lossy(value).into_owned();
            match opt.as_str() {
                "id" => match parse_i64(value.as_bytes()) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                },
                "addr" => f.addr = Some(value),
                "laddr" => f.laddr = Some(value),
                "user" => f.user = Some(value),
                "type" => match ClientType::parse(value.as_bytes()) {
                    Some(t) => f.kind = Some(t),
                    None => return Err(format!("ERR Unknown client type '{}'", super::c_text(&pair[1], usize::MAX))),
                },
                "skipme" => match value.to_ascii_lowercase().as_str() {
                    "yes" => f.skip_me = true,
                    "no" => f.skip_me = false,
                    _ => return Err("ERR syntax error".into()),
                },
                _ => return Err("ERR syntax error".into()),
            }
        }
        Ok(f)
    }
}

fn kill(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    // `CLIENT KILL addr` (old form) answers OK or an error and may kill the
    // caller; the filter form answers a count and skips the caller by default.
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter { addr: Some(String::from_utf8_lossy(&args[2]).into_owned()), ..Default::default() }
    } else {
        match KillFilter::parse(&args[2..]) {
            Ok(f) => f,
            Err(e) => {
                s.error(e);
                return Flow::Done;
            }
        }
    };
    let me = s.id;
    let registry = s.hub.clients.clone();
    let work = {
        let all = all_clients(s);
        async move {
            if let Some(user) = &filter.user {
                if registry.send(crate::registry::GetUser(user.clone())).await.ok().flatten().is_none() {
                    return Err(format!("ERR No such user '{}'", super::c_text(user.as_bytes(), usize::MAX)));
                }
            }
            let matched: Vec<u64> = all.await.into_iter().filter(|c| filter.matches(c)).map(|c| c.id).collect();
            let kill_me = matched.contains(&me) && !filter.skip_me;
            let others: Vec<u64> = matched.into_iter().filter(|id| *id != me).collect();
            let n = registry.send(KillClients(others)).await.unwrap_or(0);
            Ok((n, kill_me))
        }
    };
    wait_for(work, move |killed, s: &mut Session, ctx| {
        let (n, kill_me) = match killed {
            Ok(killed) => killed,
            Err(e) => return s.error(e),
        };
        let total = n + kill_me as usize;
        if old_form {
            if total == 0 {
                s.error("ERR No such client");
            } else {
                s.reply(Reply::ok());
            }
        } else {
            s.reply(Reply::Int(total as i64));
        }
        if kill_me {
            s.close_after_reply(ctx);
        }
    })
}

fn reply(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    match String::from_utf8_lossy(&args[2]).to_ascii_lowercase().as_str() {
        "on" => {
            s.state.replies_off = false;
            s.state.skip_next_reply = false;
            s.mute_current(false);
            s.reply(Reply::ok());
        }
        "off" => {
            s.state.replies_off = true;
            s.mute_current(true);
        }
        "skip" => {
            if !s.state.replies_off {
                s.state.skip_next_reply = true;
            }
            s.mute_current(true);
        }
        _ => s.error("ERR syntax error"),
    }
    Flow::Done
}

fn no_evict(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    match String::from_utf8_lossy(&args[2]).to_ascii_lowercase().as_str() {
        "on" | "off" => {
            s.state.no_evict = args[2].eq_ignore_ascii_case(b"on");
            s.reply(Reply::ok())
        }
        _ => s.error("ERR syntax error"),
    }
    Flow::Done
}

/// CLIENT PAUSE timeout [WRITE|ALL]: from now until the deadline, every
/// client's commands (or only those that write: PUBLISH, SPUBLISH…) wait
/// before they run, in the order they came (see `Session::paused_for`).
fn pause(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let Some(millis) = super::timeout_millis(s, &args[2]) else {
        return Flow::Done;
    };
    let all = match args.get(3).map(|m| m.to_ascii_lowercase()) {
        None => true,
        Some(m) if args.len() == 4 && m == b"all" => true,
        Some(m) if args.len() == 4 && m == b"write" => false,
        _ => {
            s.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return Flow::Done;
        }
    };
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(millis);
    let set = s.hub.clients.send(SetPause(Some(ClientPause { until: Some(until), all })));
    wait_for(set, |_, s: &mut Session, _| s.reply(Reply::ok()))
}

fn unpause(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    wait_for(s.hub.clients.send(SetPause(None)), |_, s: &mut Session, _| s.reply(Reply::ok()))
}

fn tracking(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let on = match args[2].to_ascii_lowercase().as_slice() {
        b"on" => true,
        b"off" => false,
        _ => {
            s.error("ERR syntax error");
            return Flow::Done;
        }
    };
    let mut t = Tracking { on, ..Default::default() };
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        match args[i].to_ascii_lowercase().as_slice() {
            b"redirect" if more => {
                match parse_i64(&args[i + 1]) {
                    Some(id) if id > 0 => t.redirect = id as u64,
                    _ => {
                        s.error("ERR Invalid client ID");
                        return Flow::Done;
                    }
                }
                i += 1;
            }
            b"prefix" if more => {
                t.prefixes.push(args[i + 1].clone());
                i += 1;
            }
            b"bcast" => t.bcast = true,
            b"optin" => t.optin = true,
            b"optout" => t.optout = true,
            b"noloop" => t.noloop = true,
            _ => {
                s.error("ERR syntax error");
                return Flow::Done;
            }
        }
        i += 1;
    }
    if !on {
        s.state.tracking = Tracking::default();
        s.reply(Reply::ok());
        return Flow::Done;
    }
    let refusal = if t.optin && t.optout {
        Some("ERR You can't specify both OPTIN mode and OPTOUT mode")
    } else if !t.prefixes.is_empty() && !t.bcast {
        Some("ERR PREFIX option requires BCAST mode to be enabled")
    } else if t.bcast && (t.optin || t.optout) {
        Some("ERR OPTIN and OPTOUT are not compatible with BCAST")
    } else {
        None
    };
    if let Some(text) = refusal {
        s.error(text);
        return Flow::Done;
    }
    if t.redirect == 0 || t.redirect == s.id {
        s.state.tracking = t;
        s.reply(Reply::ok());
        return Flow::Done;
    }
    let target = t.redirect;
    wait_for(all_clients(s), move |all, s: &mut Session, _| {
        if all.iter().any(|c| c.id == target) {
            s.state.tracking = t;
            s.reply(Reply::ok());
        } else {
            s.error("ERR The client ID you want redirect to does not exist");
        }
    })
}

fn trackinginfo(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let t = &s.state.tracking;
    let mut flags = Vec::new();
    if !t.on {
        flags.push("off");
    } else {
        flags.push("on");
        // Redis' order: each mode, then its CACHING state, then NOLOOP.
        let shown = [
            (t.bcast, "bcast"),
            (t.optin, "optin"),
            (t.optin && t.caching == Some(true), "caching-yes"),
            (t.optout, "optout"),
            (t.optout && t.caching == Some(false), "caching-no"),
            (t.noloop, "noloop"),
        ];
        flags.extend(shown.into_iter().filter(|(set, _)| *set).map(|(_, name)| name));
    }
    let redirect = if t.on { t.redirect as i64 } else { -1 };
    let reply = Reply::Map(vec![
        (Reply::text("flags"), Reply::Set(flags.into_iter().map(Reply::text).collect())),
        (Reply::text("redirect"), Reply::Int(redirect)),
        (Reply::text("prefixes"), Reply::Array(t.prefixes.iter().cloned().map(Reply::Bulk).collect())),
    ]);
    s.reply(reply);
    Flow::Done
}

fn getredir(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let redirect = if s.state.tracking.on { s.state.tracking.redirect as i64 } else { -1 };
    s.reply(Reply::Int(redirect));
    Flow::Done
}

fn caching(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let t = &mut s.state.tracking;
    if !t.on {
        s.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
        return Flow::Done;
    }
    match args[2].to_ascii_lowercase().as_slice() {
        b"yes" if t.on && t.optin => t.caching = Some(true),
        b"no" if t.on && t.optout => t.caching = Some(false),
        b"yes" => {
            s.error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
            return Flow::Done;
        }
        b"no" => {
            s.error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
            return Flow::Done;
        }
        _ => {
            s.error("ERR syntax error");
            return Flow::Done;
        }
    }
    s.reply(Reply::ok());
    Flow::Done
}

/// Only WAIT blocks in Herald, and Redis' UNBLOCK does not reach WAIT
/// either: nothing is ever unblocked.
fn unblock(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    // Redis' order: the count of arguments, the reason, then the id.
    if args.len() > 4 {
        return super::subcommand_syntax_error(s, args);
    }
    if args.get(3).is_some_and(|m| !m.eq_ignore_ascii_case(b"timeout") && !m.eq_ignore_ascii_case(b"error")) {
        s.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    } else if parse_i64(&args[2]).is_none() {
        s.error("ERR value is not an integer or out of range");
    } else {
        s.reply(Reply::Int(0));
    }
    Flow::Done
}
