//! Commands: the table Herald knows, and how a request finds its handler.
//! One file per command family.

pub(crate) mod acl;
pub(crate) mod client;
pub(crate) mod cluster;
pub(crate) mod command;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod diagnostics;
pub(crate) mod info;
pub(crate) mod keyspace;
pub(crate) mod multi;
pub(crate) mod publish;
pub(crate) mod pubsub;
pub(crate) mod scripting;
pub(crate) mod server;
pub(crate) mod shutdown;
pub(crate) mod subscribe;

use actix::Context;
use bytes::Bytes;

use crate::session::{Flow, Session};
use crate::stats::CommandId;

pub(crate) type Run = fn(&mut Session, &[Bytes], &mut Context<Session>) -> Flow;

/// One command (or subcommand) as COMMAND INFO/DOCS describe it.
pub(crate) struct Spec {
    /// Lower case; subcommands without their container's name.
    pub name: &'static str,
    /// Redis' arity: exact if positive, a minimum of `-arity` if negative.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    /// Arguments as `name`, `[optional]`, `name...` (for redis-cli hints).
    pub args: &'static str,
    /// Allowed in RESP2's subscribed context.
    pub in_pubsub_context: bool,
    /// Held by CLIENT PAUSE WRITE, as Redis holds commands it would send to
    /// replicas (`write` or `may_replicate`: PUBLISH, SPUBLISH, FLUSHDB…).
    pub may_replicate: bool,
    /// Its wait is the client blocking (WAIT), not work: like Redis, SLOWLOG
    /// and LATENCY leave that time out.
    pub blocks: bool,
    pub subcommands: &'static [Spec],
    /// A container's HELP text, which its `help` subcommand prints.
    pub help: &'static [&'static str],
    /// `None` for a pure container (CLIENT, CONFIG, PUBSUB).
    pub run: Option<Run>,
}

impl Spec {
    const fn bare(name: &'static str, arity: i32, group: &'static str) -> Spec {
        Spec {
            name,
            arity,
            flags: &[],
            acl: &[],
            group,
            since: "1.0.0",
            summary: "",
            args: "",
            in_pubsub_context: false,
            may_replicate: false,
            blocks: false,
            subcommands: &[],
            help: &[],
            run: None,
        }
    }

    pub(crate) const fn new(name: &'static str, arity: i32, group: &'static str, run: Run) -> Spec {
        Spec { run: Some(run), ..Spec::bare(name, arity, group) }
    }

    pub(crate) const fn container(name: &'static str, group: &'static str, subcommands: &'static [Spec]) -> Spec {
        Spec { subcommands, ..Spec::bare(name, -2, group) }
    }

    fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

/// Every top-level command Herald answers.
pub(crate) fn table() -> &'static [Spec] {
    static TABLE: std::sync::OnceLock<Vec<Spec>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut all = Vec::new();
        all.extend(publish::specs());
        all.extend(subscribe::specs());
        all.push(pubsub::spec());
        all.extend(connection::specs());
        all.push(client::spec());
        all.push(info::spec());
        all.push(command::spec());
        all.push(config::spec());
        all.extend(keyspace::specs());
        all.extend(multi::specs());
        all.extend(shutdown::specs());
        all.push(acl::spec());
        all.extend(server::specs());
        all.extend(scripting::specs());
        all.extend(cluster::specs());
        all.extend(diagnostics::specs());
        all
    })
}

/// Every command and subcommand by its full name (`publish`, `client|list`).
pub(crate) fn full_names() -> Vec<String> {
    let mut names = Vec::new();
    for spec in table() {
        if spec.run.is_some() {
            names.push(spec.name.to_string());
        }
        names.extend(spec.subcommands.iter().map(|sub| format!("{}|{}", spec.name, sub.name)));
    }
    names
}

pub(crate) fn lookup(name: &str) -> Option<&'static Spec> {
    table().iter().find(|s| s.name == name)
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

/// Redis' `'a' 'b' ` argument echo in unknown-command errors.
fn args_preview(args: &[Bytes]) -> String {
    let mut s = String::new();
    for a in args.iter().take(127) {
        let text = String::from_utf8_lossy(&a[..a.len().min(128)]).into_owned();
        s.push_str(&format!("'{text}' "));
    }
    s
}

/// Runs one request the way Redis' `processCommand` checks it: lookup,
/// subcommand, arity, subscribed context, MULTI queueing, then the command.
/// Answers what it did, and the table entry of the command that ran (none
/// if it was refused or queued), for Commandstats.
pub(crate) fn dispatch(
    session: &mut Session,
    args: Vec<Bytes>,
    ctx: &mut Context<Session>,
) -> (Flow, Option<&'static Spec>) {
    let mut ran = None;
    let flow = check_and_run(session, args, ctx, &mut ran);
    (flow, ran)
}

fn check_and_run(
    session: &mut Session,
    args: Vec<Bytes>,
    ctx: &mut Context<Session>,
    ran: &mut Option<&'static Spec>,
) -> Flow {
    let name = lower(&args[0]);
    let Some(base) = lookup(&name) else {
        return not_herald(session, &name, &args);
    };
    let (spec, full_name) = if !base.subcommands.is_empty() && args.len() >= 2 {
        let sub = lower(&args[1]);
        match base.subcommands.iter().find(|s| s.name == sub) {
            Some(s) => (s, format!("{}|{}", base.name, s.name)),
            None if base.run.is_some() => (base, base.name.to_string()),
            None => return unknown_subcommand(session, base.name, &args[1]),
        }
    } else {
        (base, base.name.to_string())
    };
    session.last_cmd = full_name.clone();
    if !spec.arity_ok(args.len()) || spec.run.is_none() {
        return reject(
            session,
            CommandId::of(spec),
            &full_name,
            format!("ERR wrong number of arguments for '{full_name}' command"),
        );
    }
    let exempt = spec.flags.contains(&"no_auth");
    if let Some(refusal) = refusal(session, &full_name, spec.acl, exempt, spec.in_pubsub_context) {
        return reject(session, CommandId::of(spec), &full_name, refusal);
    }
    let channels = channel_args(spec.name, &args);
    if channels.iter().any(|c| !session.state.user.may_use_channel(c, spec.name == "psubscribe")) {
        session.acl_denied("channel", c_name(channels, &session.state.user, spec.name == "psubscribe"), None);
        return reject(
            session,
            CommandId::of(spec),
            &full_name,
            "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        );
    }
    if let Some(multi) = &mut session.state.multi {
        if spec.flags.contains(&"no_multi") && !matches!(name.as_str(), "multi" | "watch") {
            return reject(
                session,
                CommandId::of(spec),
                &full_name,
                "ERR Command not allowed inside a transaction".into(),
            );
        }
        if !matches!(name.as_str(), "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            multi.queued.push(args);
            session.reply(crate::protocol::Reply::Simple("QUEUED"));
            return Flow::Done;
        }
    }
    *ran = Some(spec);
    (spec.run.expect("checked above"))(session, &args, ctx)
}

/// Every container's HELP subcommand: its container's text, one simple
/// string a line, as Redis' `addReplyHelp`.
pub(crate) fn help(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let text = lookup(&lower(&args[0])).map_or(&[][..], |container| container.help);
    s.reply(crate::protocol::Reply::Array(text.iter().map(|line| crate::protocol::Reply::Simple(line)).collect()));
    Flow::Done
}

/// A timeout argument in milliseconds (WAIT, CLIENT PAUSE), or `None`
/// after Redis' error for it.
pub(crate) fn timeout_millis(s: &mut Session, arg: &[u8]) -> Option<u64> {
    match crate::protocol::request::parse_i64(arg) {
        None => s.error("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => s.error("ERR timeout is negative"),
        Some(t) => return Some(t as u64),
    }
    None
}

/// The arguments of command `name` that ACL channel rules apply to.
pub(crate) fn channel_args<'a>(name: &str, args: &'a [Bytes]) -> &'a [Bytes] {
    match name {
        "publish" | "spublish" => &args[1..2],
        "subscribe" | "ssubscribe" | "psubscribe" => &args[1..],
        _ => &[],
    }
}

/// The first channel `user` may not use, for ACL LOG.
fn c_name(channels: &[Bytes], user: &crate::acl::User, literal: bool) -> String {
    let denied = channels.iter().find(|c| !user.may_use_channel(c, literal));
    denied.map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default()
}

/// The checks after arity, in Redis' order: authentication, the user's
/// command rules, RESP2's subscribed context.
fn refusal(session: &mut Session, full_name: &str, acl: &[&str], exempt: bool, pubsub_ok: bool) -> Option<String> {
    if !session.state.authenticated && !exempt {
        return Some("NOAUTH Authentication required.".into());
    }
    if !exempt && !session.state.user.may_run(full_name, acl) {
        session.acl_denied("command", full_name.to_string(), None);
        return Some(format!("NOPERM this user has no permissions to run the '{full_name}' command"));
    }
    if session.subs.any() && !session.state.resp3 && !pubsub_ok {
        return Some(format!(
            "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
    }
    None
}

fn unknown_subcommand(session: &mut Session, container: &str, sub: &[u8]) -> Flow {
    let text = String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned();
    session.error(format!("ERR unknown subcommand '{text}'. Try {} HELP.", container.to_uppercase()));
    if let Some(multi) = &mut session.state.multi {
        multi.failed = true;
    }
    Flow::Done
}

/// A command Herald does not have. Outside RESP2's subscribed context it
/// is unknown; inside it, a command Redis 7.0.15 knows is checked as Redis
/// checks it, so a subscriber gets the same error Redis would give.
fn not_herald(session: &mut Session, name: &str, args: &[Bytes]) -> Flow {
    let unknown = |session: &mut Session| {
        let first = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
        session.error(format!("ERR unknown command '{first}', with args beginning with: {}", args_preview(&args[1..])));
        if let Some(multi) = &mut session.state.multi {
            multi.failed = true;
        }
        Flow::Done
    };
    let subscribed = session.subs.any() && !session.state.resp3;
    let Some(base) = crate::redis::find(name).filter(|_| subscribed) else {
        return unknown(session);
    };
    let (command, full_name) = if crate::redis::is_container(name) && args.len() >= 2 {
        let full = format!("{name}|{}", lower(&args[1]));
        match crate::redis::find(&full) {
            Some(sub) => (sub, full),
            None => return unknown_subcommand(session, name, &args[1]),
        }
    } else {
        (base, name.to_string())
    };
    let text = if !command.arity_ok(args.len()) || crate::redis::is_container(name) && args.len() < 2 {
        format!("ERR wrong number of arguments for '{full_name}' command")
    } else {
        let acl = command.acl.clone();
        refusal(session, &full_name, &acl, command.flags.contains(&"no_auth"), false)
            .expect("a subscribed RESP2 session is refused whatever Redis command it sends")
    };
    reject(session, CommandId::of(command), &full_name, text)
}

/// Refuses a command (counted as a rejected call of `full_name`); inside
/// MULTI that also dooms the transaction.
fn reject(session: &mut Session, id: CommandId, full_name: &str, text: String) -> Flow {
    if let Some(multi) = &mut session.state.multi {
        multi.failed = true;
    }
    session.hub.stats.shard(session.slot).reject(id, full_name);
    session.error(text);
    Flow::Done
}

#[cfg(test)]
mod tests {
    /// ACL rules are checked against `redis::known`: a command Herald adds
    /// must be there, or rules naming it would not load.
    #[test]
    fn every_command_herald_answers_is_known_to_acl_rules() {
        for name in super::full_names() {
            assert!(crate::redis::known(&name), "{name} is in Herald's table but not in redis::known");
        }
        for later in crate::redis::LATER {
            assert!(super::full_names().iter().any(|n| n == later), "{later} is in redis::LATER but Herald lacks it");
        }
    }
}
