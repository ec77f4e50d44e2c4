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
mod redis_docs;
pub(crate) mod scripting;
pub(crate) mod server;
pub(crate) mod shutdown;
pub(crate) mod subscribe;

use actix::Context;
use bytes::Bytes;

use crate::protocol::push::Kind;
use crate::session::{Flow, Session};
use crate::stats::CommandId;

pub(crate) type Run = fn(&mut Session, &[Bytes], &mut Context<Session>) -> Flow;

/// One command (or subcommand) as COMMAND INFO/DOCS describe it.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    /// Lower case; subcommands without their container's name.
    pub name: &'static str,
    /// Redis' arity: exact if positive, a minimum of `-arity` if negative.
    pub arity: i32,
    /// Redis' flags and ACL categories (see `as_redis`).
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
    /// Which arguments name channels, and whether ACL channel rules apply.
    pub channels: Channels,
    /// SSUBSCRIBE and SUNSUBSCRIBE: every argument is a shard channel,
    /// which in cluster mode must hash to a slot this node serves (SPUBLISH
    /// says so by `publishes`).
    pub shard: bool,
    /// PUBLISH and SPUBLISH: the kind of channel published to.
    pub publishes: Option<Kind>,
    /// May go out with its pipelined neighbours as one run (see
    /// `publish::publish_run`).
    pub joins_runs: bool,
    /// Runs at once inside MULTI instead of being queued for EXEC (EXEC,
    /// DISCARD, QUIT, RESET; MULTI and WATCH, to refuse themselves), as
    /// Redis' `processCommand` lets them.
    pub runs_in_multi: bool,
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
            channels: Channels::None,
            shard: false,
            publishes: None,
            joins_runs: false,
            runs_in_multi: false,
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

    /// Whether Redis' table gives this command `flag`.
    pub(crate) fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag.word())
    }

    pub(crate) fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

/// Which of a command's arguments name channels. Redis 7.0 applies ACL
/// channel rules to publishing and subscribing only: leaving a channel or
/// counting its subscribers is always allowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Channels {
    /// Names no channel.
    None,
    /// The first argument is a channel, checked (PUBLISH, SPUBLISH).
    First,
    /// Every argument is a channel, checked (SUBSCRIBE, SSUBSCRIBE).
    All,
    /// Every argument is a pattern, checked as a literal against the
    /// user's channel rules (PSUBSCRIBE).
    AllPatterns,
    /// Names channels or patterns that no rule restricts (the UNSUBSCRIBE
    /// family, PUBSUB's introspection).
    Unchecked,
}

impl Channels {
    /// The arguments of `args` (the whole request) ACL channel rules apply to.
    pub(crate) fn checked(self, args: &[Bytes]) -> &[Bytes] {
        match self {
            Channels::First => &args[1..2.min(args.len())],
            Channels::All | Channels::AllPatterns => &args[1.min(args.len())..],
            Channels::None | Channels::Unchecked => &[],
        }
    }

    /// Patterns are compared with the rules literally, not matched.
    pub(crate) fn literal(self) -> bool {
        self == Channels::AllPatterns
    }
}

/// The command flags (Redis' words, as COMMAND INFO shows them) that
/// Herald's dispatch acts on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flag {
    /// May run before AUTH (AUTH, HELLO, QUIT, RESET).
    NoAuth,
    /// Refused inside MULTI.
    NoMulti,
    /// Not shown to MONITOR.
    Admin,
    /// Counted by LATENCY's `fast-command` event rather than `command`.
    Fast,
}

impl Flag {
    pub(crate) const fn word(self) -> &'static str {
        match self {
            Flag::NoAuth => "no_auth",
            Flag::NoMulti => "no_multi",
            Flag::Admin => "admin",
            Flag::Fast => "fast",
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
        all.into_iter().map(|spec| as_redis(spec, spec.name)).collect()
    })
}

/// `spec` with Redis 7.0.15's flags and ACL categories for `full_name`
/// (its subcommands' too): one source for what COMMAND INFO shows, ACL
/// rules match and dispatch acts on. A command Redis 7.0.15 lacks keeps
/// what its entry says.
fn as_redis(spec: Spec, full_name: &str) -> Spec {
    let mut spec = match crate::redis::find(full_name) {
        Some(redis) => Spec { flags: redis.flags.as_slice(), acl: redis.acl.as_slice(), ..spec },
        None => spec,
    };
    if !spec.subcommands.is_empty() {
        let subs: Vec<Spec> =
            spec.subcommands.iter().map(|sub| as_redis(*sub, &format!("{full_name}|{}", sub.name))).collect();
        // Built once per container, for the life of the process.
        spec.subcommands = Box::leak(subs.into_boxed_slice());
    }
    spec
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

/// The command `name` (as sent, any case) if it may join a pipelined run:
/// the pipeline's hot path, so no lower-casing and no allocation.
pub(crate) fn run_member(name: &[u8]) -> Option<&'static Spec> {
    static MEMBERS: std::sync::OnceLock<Vec<&'static Spec>> = std::sync::OnceLock::new();
    let members = MEMBERS.get_or_init(|| table().iter().filter(|s| s.joins_runs).collect());
    // Every command of a pipeline is asked, so the case fold is the cheap
    // one: members' names are lowercase letters (a test checks), for which
    // `b | 0x20` folds exactly (about 45 instructions fewer per PUBLISH
    // than `eq_ignore_ascii_case`, callgrind).
    members
        .iter()
        .copied()
        .find(|s| s.name.len() == name.len() && name.iter().zip(s.name.bytes()).all(|(&b, lower)| b | 0x20 == lower))
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

/// Redis' `'a' 'b' ` argument echo in unknown-command errors.
fn args_preview(args: &[Bytes]) -> String {
    // Redis prints arguments while the preview is under 128 bytes, each
    // cut to what is left of them.
    let mut s = String::new();
    for a in args {
        if s.len() >= 128 {
            break;
        }
        let text = c_text(a, 128 - s.len());
        s.push_str(&format!("'{text}' "));
    }
    s
}

/// Redis' `addReplySubcommandSyntaxError`, for a subcommand given the wrong
/// number of arguments where its arity let them through.
pub(crate) fn subcommand_syntax_error(s: &mut Session, args: &[Bytes]) -> Flow {
    let container = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    let sub = c_text(&args[1], 128);
    s.error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."));
    Flow::Done
}

/// An argument as Redis' `%.*s` prints it into an error: up to its first
/// NUL byte, and at most `max` bytes.
pub(crate) fn c_text(arg: &[u8], max: usize) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len()).min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
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
            // Even where the container runs alone (COMMAND), as Redis'
            // lookupCommand.
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
    let exempt = spec.has(Flag::NoAuth);
    if let Some(refusal) = refusal(session, &full_name, spec.acl, exempt) {
        return reject(session, CommandId::of(spec), &full_name, refusal);
    }
    if let Some(denied) = denied_channel(spec, &args, &session.state.user) {
        session.acl_denied("channel", String::from_utf8_lossy(denied).into_owned(), None);
        return reject(
            session,
            CommandId::of(spec),
            &full_name,
            "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        );
    }
    if let Some(redirect) = cluster::redirect(session, spec, &args) {
        return reject(session, CommandId::of(spec), &full_name, redirect);
    }
    if let Some(refusal) = context_refusal(session, &full_name, spec.in_pubsub_context) {
        return reject(session, CommandId::of(spec), &full_name, refusal);
    }
    if let Some(multi) = &mut session.state.multi {
        if spec.has(Flag::NoMulti) && !spec.runs_in_multi {
            return reject(
                session,
                CommandId::of(spec),
                &full_name,
                "ERR Command not allowed inside a transaction".into(),
            );
        }
        if !spec.runs_in_multi {
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

/// The first channel argument of `args` (a request for `spec`) that
/// `user`'s channel rules forbid, if any.
pub(crate) fn denied_channel<'a>(spec: &Spec, args: &'a [Bytes], user: &crate::acl::User) -> Option<&'a Bytes> {
    let literal = spec.channels.literal();
    spec.channels.checked(args).iter().find(|c| !user.may_use_channel(c, literal))
}

/// The first checks after arity, in Redis' order: authentication, the
/// user's command rules. (Then come its channel rules, the cluster's slot
/// check and [`context_refusal`].)
fn refusal(session: &mut Session, full_name: &str, acl: &[&str], exempt: bool) -> Option<String> {
    if !session.state.authenticated && !exempt {
        return Some("NOAUTH Authentication required.".into());
    }
    if !exempt && !session.state.user.may_run(full_name, acl) {
        session.acl_denied("command", full_name.to_string(), None);
        return Some(format!("NOPERM this user has no permissions to run the '{full_name}' command"));
    }
    None
}

/// RESP2's subscribed context admits only the commands marked for it.
fn context_refusal(session: &Session, full_name: &str, pubsub_ok: bool) -> Option<String> {
    if session.subs.any() && !session.state.resp3 && !pubsub_ok {
        return Some(format!(
            "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
    }
    None
}

fn unknown_subcommand(session: &mut Session, container: &str, sub: &[u8]) -> Flow {
    let text = c_text(sub, 128);
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
        let first = c_text(&args[0], 128);
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
        refusal(session, &full_name, &acl, command.flags.contains(&"no_auth"))
            .or_else(|| context_refusal(session, &full_name, false))
            .expect("a subscribed RESP2 session is refused whatever Redis command it sends")
    };
    reject(session, CommandId::of(command), &full_name, text)
}

/// Refuses a command (counted as a rejected call of `full_name`); inside
/// MULTI that also dooms the transaction.
fn reject(session: &mut Session, id: CommandId, full_name: &str, text: String) -> Flow {
    session.hub.stats.shard(session.slot).reject(id, full_name);
    if full_name == "exec" {
        // Redis' rejectCommand: a refused EXEC discards the transaction,
        // and says why as EXECABORT, in MULTI or not.
        session.state.multi = None;
        let why = text.strip_prefix("ERR ").unwrap_or(&text);
        session.error(format!("EXECABORT Transaction discarded because of: {why}"));
        return Flow::Done;
    }
    if let Some(multi) = &mut session.state.multi {
        multi.failed = true;
    }
    session.error(text);
    Flow::Done
}

#[cfg(test)]
mod tests {
    use super::{table, Channels, Spec};
    use bytes::Bytes;

    /// Every command and subcommand with its full name.
    fn every_spec() -> Vec<(String, &'static Spec)> {
        let mut all = Vec::new();
        for spec in table() {
            all.push((spec.name.to_string(), spec));
            all.extend(spec.subcommands.iter().map(|sub| (format!("{}|{}", spec.name, sub.name), sub)));
        }
        all
    }

    /// A command whose arguments (as COMMAND DOCS names them) include a
    /// channel, or a pattern of channels, must say in the table whether
    /// ACL channel rules apply to them: a new command taking channels
    /// cannot skip the check by saying nothing.
    #[test]
    fn every_command_naming_channels_says_how_acl_checks_them() {
        for (name, spec) in every_spec() {
            let words = spec.args.split([' ', '[', ']', '.', '|']).filter(|w| !w.is_empty());
            let channels = words.clone().any(|w| w == "channel" || w == "shardchannel");
            let patterns = spec.group == "pubsub" && words.clone().any(|w| w == "pattern");
            assert_eq!(
                channels || patterns,
                spec.channels != Channels::None,
                "{name} (args {:?}) and its table entry disagree on naming channels",
                spec.args
            );
        }
    }

    /// Every command whose channels are checked refuses a user allowed no
    /// channel and admits one allowed every channel; the rest never refuse.
    #[test]
    fn every_checked_channel_argument_is_refused_without_permission() {
        let mut none = crate::acl::User::new("none");
        none.apply("on").unwrap();
        none.apply("resetchannels").unwrap();
        let mut all = crate::acl::User::new("all");
        all.apply("on").unwrap();
        all.apply("allchannels").unwrap();
        let mut checked = Vec::new();
        for (name, spec) in every_spec() {
            let argc = spec.arity.unsigned_abs().max(2) as usize;
            let mut args = vec![Bytes::from(name.replace('|', " "))];
            args.extend((1..argc).map(|i| Bytes::from(format!("ch{i}"))));
            let refused = super::denied_channel(spec, &args, &none).is_some();
            let checks = matches!(spec.channels, Channels::First | Channels::All | Channels::AllPatterns);
            assert_eq!(refused, checks, "{name}: refused {refused} a user with no channels");
            assert!(super::denied_channel(spec, &args, &all).is_none(), "{name} refused a user with every channel");
            if checks {
                checked.push(name);
            }
        }
        assert_eq!(checked, ["publish", "spublish", "subscribe", "psubscribe", "ssubscribe"]);
    }

    /// Only publishes join pipelined runs, and each says what it publishes.
    #[test]
    fn run_members_are_the_publishes() {
        for (name, spec) in every_spec() {
            assert_eq!(spec.joins_runs, spec.publishes.is_some(), "{name}");
            assert_eq!(super::run_member(name.as_bytes()).is_some(), spec.joins_runs, "{name}");
        }
        assert!(super::run_member(b"PuBlIsH").is_some());
        assert!(super::run_member(b"publishx").is_none());
        // The fold `run_member` uses is exact only for letters.
        for (name, _) in every_spec().into_iter().filter(|(_, s)| s.joins_runs) {
            assert!(name.bytes().all(|b| b.is_ascii_lowercase()), "{name}");
        }
    }

    /// The flags and ACL categories COMMAND INFO shows (and dispatch acts
    /// on) are Redis 7.0.15's for every command Redis has.
    #[test]
    fn flags_and_categories_are_redis() {
        let mut differ = Vec::new();
        for (name, spec) in every_spec() {
            let Some(redis) = crate::redis::find(&name) else { continue };
            if spec.flags != redis.flags.as_slice() || spec.acl != redis.acl.as_slice() {
                differ.push(format!(
                    "{name}: {:?} {:?} vs Redis {:?} {:?}",
                    spec.flags, spec.acl, redis.flags, redis.acl
                ));
            }
        }
        assert!(differ.is_empty(), "{differ:#?}");
    }

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
