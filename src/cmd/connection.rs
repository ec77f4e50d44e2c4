//! PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET.

use std::sync::Arc;

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::acl::User;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::registry::Authenticate;
use crate::session::{wait_for, Flow, Session};

/// The Redis release whose replies Herald matches.
use crate::redis::VERSION as REDIS_VERSION;

pub(crate) fn specs() -> [Spec; 7] {
    [
        Spec {
            summary: "Ping the server",
            args: "[message]",
            in_pubsub_context: true,
            ..Spec::new("ping", -1, "connection", ping)
        },
        Spec { summary: "Echo the given string", args: "message", ..Spec::new("echo", 2, "connection", echo) },
        Spec {
            since: "6.0.0",
            summary: "Handshake with Redis",
            args: "[protover] [AUTH username password] [SETNAME clientname]",
            ..Spec::new("hello", -1, "connection", hello)
        },
        Spec {
            summary: "Authenticate to the server",
            args: "[username] password",
            ..Spec::new("auth", -2, "connection", auth)
        },
        Spec {
            summary: "Change the selected database for the current connection",
            args: "index",
            ..Spec::new("select", 2, "connection", select)
        },
        Spec {
            summary: "Close the connection",
            in_pubsub_context: true,
            runs_in_multi: true,
            ..Spec::new("quit", -1, "connection", quit)
        },
        Spec {
            since: "6.2.0",
            summary: "Reset the connection",
            in_pubsub_context: true,
            runs_in_multi: true,
            ..Spec::new("reset", 1, "connection", reset)
        },
    ]
}

fn ping(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if args.len() > 2 {
        s.error("ERR wrong number of arguments for 'ping' command");
        return Flow::Done;
    }
    if s.subs.any() && !s.state.resp3 {
        let msg = args.get(1).cloned().unwrap_or_default();
        s.reply(Reply::Array(vec![Reply::text("pong"), Reply::Bulk(msg)]));
    } else {
        match args.get(1) {
            Some(msg) => s.reply(Reply::Bulk(msg.clone())),
            None => s.reply(Reply::Simple("PONG")),
        }
    }
    Flow::Done
}

fn echo(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Bulk(args[1].clone()));
    Flow::Done
}

/// Redis' `clientSetName` check: printable ASCII, no spaces.
pub(crate) fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Checks `user`/`password` with the registry, then runs `then` if they
/// are right (the connection is that user from then on).
/// `command` is the command's name as sent, which ACL LOG keeps as the
/// refusal's object, as Redis does.
fn authenticate(
    s: &mut Session,
    command: String,
    user: &[u8],
    password: Bytes,
    then: impl FnOnce(&mut Session) + 'static,
) -> Flow {
    let user = String::from_utf8_lossy(user).into_owned();
    let check = s.hub.clients.send(Authenticate { user: user.clone(), password });
    wait_for(check, move |found, s: &mut Session, _| {
        if log_in(s, command, user, found.ok().flatten()) {
            then(s);
        }
    })
}

/// The connection is `found` from now on, if the password was right;
/// otherwise Redis' WRONGPASS, logged as Redis logs it (`command` as sent,
/// the name `tried`). Whether it logged in.
fn log_in(s: &mut Session, command: String, tried: String, found: Option<Arc<User>>) -> bool {
    match found {
        Some(user) => {
            s.state.authenticated = true;
            s.state.set_user(user);
            true
        }
        None => {
            s.acl_denied("auth", command, Some(tried));
            s.error("WRONGPASS invalid username-password pair or user is disabled.");
            false
        }
    }
}

fn hello(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let mut version = None;
    if let Some(v) = args.get(1) {
        match parse_i64(v) {
            None => {
                s.error("ERR Protocol version is not an integer or out of range");
                return Flow::Done;
            }
            Some(v) if !(2..=3).contains(&v) => {
                s.error("NOPROTO unsupported protocol version");
                return Flow::Done;
            }
            Some(v) => version = Some(v),
        }
    }
    // Redis 7.0 takes HELLO's options in order, each at once: a name set
    // before a wrong password or a bad option stays set, and options after
    // a failure are not looked at.
    let mut steps = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            steps.push(HelloStep::Auth(String::from_utf8_lossy(&args[j + 1]).into_owned(), args[j + 2].clone()));
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            if !valid_client_name(&args[j + 1]) {
                steps.push(HelloStep::Fail(
                    "ERR Client names cannot contain spaces, newlines or special characters.".into(),
                ));
                break;
            }
            steps.push(HelloStep::Name(args[j + 1].clone()));
            j += 2;
        } else {
            steps.push(HelloStep::Fail(format!(
                "ERR Syntax error in HELLO option '{}'",
                super::c_text(opt, usize::MAX)
            )));
            break;
        }
    }
    let auths: Vec<(String, Bytes)> = steps
        .iter()
        .filter_map(|step| match step {
            HelloStep::Auth(user, password) => Some((user.clone(), password.clone())),
            _ => None,
        })
        .collect();
    let command = super::c_text(&args[0], usize::MAX);
    if auths.is_empty() {
        hello_steps(s, command, steps, Vec::new(), version);
        return Flow::Done;
    }
    // The passwords are checked first, in order up to the first wrong one;
    // the steps then take effect in order with their answers.
    let clients = s.hub.clients.clone();
    let checks = async move {
        let mut users = Vec::new();
        for (user, password) in auths {
            let found = clients.send(Authenticate { user, password }).await.ok().flatten();
            let wrong = found.is_none();
            users.push(found);
            if wrong {
                break;
            }
        }
        users
    };
    wait_for(checks, move |users, s: &mut Session, _| hello_steps(s, command, steps, users, version))
}

/// One option of HELLO, as read.
enum HelloStep {
    Auth(String, Bytes),
    Name(Bytes),
    /// The option Redis stops at, and its error.
    Fail(String),
}

/// Applies HELLO's options in order (`users`: each AUTH's user, if its
/// password was right), then switches protocol and greets.
/// `command` is HELLO as sent (ACL LOG's object for a wrong password).
fn hello_steps(
    s: &mut Session,
    command: String,
    steps: Vec<HelloStep>,
    users: Vec<Option<Arc<User>>>,
    version: Option<i64>,
) {
    let mut users = users.into_iter();
    for step in steps {
        match step {
            HelloStep::Name(name) => s.state.name = (!name.is_empty()).then_some(name),
            HelloStep::Auth(tried, _) => {
                if !log_in(s, command.clone(), tried, users.next().flatten()) {
                    return;
                }
            }
            HelloStep::Fail(error) => return s.error(error),
        }
    }
    if !s.state.authenticated {
        return s.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO \
             AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
             version at the same time",
        );
    }
    if let Some(v) = version {
        s.state.resp3 = v == 3;
    }
    let proto = if s.state.resp3 { 3 } else { 2 };
    s.reply(Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Int(proto)),
        (Reply::text("id"), Reply::Int(s.id as i64)),
        (Reply::text("mode"), Reply::text(super::cluster::mode(s))),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(vec![])),
    ]));
}

fn auth(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let ok = |s: &mut Session| s.reply(Reply::ok());
    match args.len() {
        2 if s.state.default_user.nopass => s.error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        2 => return authenticate(s, super::c_text(&args[0], usize::MAX), b"default", args[1].clone(), ok),
        3 => return authenticate(s, super::c_text(&args[0], usize::MAX), &args[1], args[2].clone(), ok),
        _ => s.error("ERR syntax error"),
    }
    Flow::Done
}

fn select(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    match parse_i64(&args[1]).filter(|v| i32::try_from(*v).is_ok()) {
        None => s.error("ERR value is not an integer or out of range"),
        Some(db) if db < 0 || db >= s.settings.databases as i64 => s.error("ERR DB index is out of range"),
        Some(db) => {
            // Channels are global across databases, as in Redis.
            s.state.db = db as u32;
            s.reply(Reply::ok());
        }
    }
    Flow::Done
}

fn quit(s: &mut Session, _: &[Bytes], ctx: &mut Context<Session>) -> Flow {
    s.reply(Reply::ok());
    s.close_after_reply(ctx);
    Flow::Done
}

fn reset(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.leave_monitor();
    s.drop_subscriptions();
    s.state.reset();
    s.reply(Reply::Simple("RESET"));
    Flow::Done
}
