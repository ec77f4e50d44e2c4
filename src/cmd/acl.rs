//! ACL WHOAMI | LIST | USERS | SETUSER | DELUSER | CAT | GETUSER | LOG |
//! DRYRUN | HELP: the users live in the
//! client registry (see `crate::acl`).

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::acl::GetUserField;
use crate::protocol::request::parse_i64;
use crate::protocol::Reply;
use crate::registry::{DeleteUsers, GetUser, ListUsers, ReadAclLog, SetUser};
use crate::session::{wait_for, Flow, Session};

static SUBCOMMANDS: [Spec; 10] = [
    Spec {
        since: "6.0.0",
        summary: "Return the name of the user associated to the current connection",
        ..Spec::new("whoami", 2, "server", whoami)
    },
    Spec {
        since: "6.0.0",
        summary: "List the current ACL rules in ACL config file format",
        ..Spec::new("list", 2, "server", list)
    },
    Spec {
        since: "6.0.0",
        summary: "List the username of all the configured ACL rules",
        ..Spec::new("users", 2, "server", users)
    },
    Spec {
        since: "6.0.0",
        summary: "Modify or create the rules for a specific ACL user",
        args: "username [rule...]",
        ..Spec::new("setuser", -3, "server", setuser)
    },
    Spec {
        since: "6.0.0",
        summary: "Remove the specified ACL users and the associated rules",
        args: "username...",
        ..Spec::new("deluser", -3, "server", deluser)
    },
    Spec {
        since: "6.0.0",
        summary: "List the ACL categories or the commands inside a category",
        args: "[categoryname]",
        ..Spec::new("cat", -2, "server", cat)
    },
    Spec {
        since: "6.0.0",
        summary: "Get the rules for a specific ACL user",
        args: "username",
        ..Spec::new("getuser", 3, "server", getuser)
    },
    Spec {
        since: "6.0.0",
        summary: "List latest events denied because of ACLs in place",
        args: "[count|RESET]",
        ..Spec::new("log", -2, "server", log)
    },
    Spec {
        since: "7.0.0",
        summary: "Returns whether the user can execute the given command without executing the command.",
        args: "username command [arg...]",
        ..Spec::new("dryrun", -4, "server", dryrun)
    },
    Spec {
        since: "6.0.0",
        summary: "Show helpful text about the different subcommands",
        ..Spec::new("help", 2, "server", super::help)
    },
];

pub(crate) fn spec() -> Spec {
    Spec {
        since: "6.0.0",
        summary: "A container for Access List Control commands",
        help: HELP,
        ..Spec::container("acl", "server", &SUBCOMMANDS)
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn whoami(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Bulk(Bytes::from(s.state.user.name.clone())));
    Flow::Done
}

fn names(s: &mut Session, names_only: bool) -> Flow {
    let asked = s.hub.clients.send(ListUsers { names_only });
    wait_for(asked, |lines, s: &mut Session, _| {
        s.reply(Reply::Array(lines.unwrap_or_default().into_iter().map(|l| Reply::Bulk(l.into())).collect()))
    })
}

fn list(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    names(s, false)
}

fn users(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    names(s, true)
}

fn setuser(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let set = SetUser { name: text(&args[2]), rules: args[3..].iter().map(text).collect() };
    wait_for(s.hub.clients.send(set), |done, s: &mut Session, _| match done {
        Ok(Ok(())) => s.reply(Reply::ok()),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR the client registry is gone"),
    })
}

fn deluser(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let delete = DeleteUsers(args[2..].iter().map(text).collect());
    wait_for(s.hub.clients.send(delete), |done, s: &mut Session, _| match done {
        Ok(Ok(n)) => s.reply(Reply::Int(n as i64)),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR the client registry is gone"),
    })
}

/// Every category, or the commands (and subcommands) in one.
fn cat(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if args.len() > 3 {
        return super::subcommand_syntax_error(s, args);
    }
    let Some(wanted) = args.get(2).map(|c| text(c).to_ascii_lowercase()) else {
        let all = crate::redis::categories().iter().map(|c| Reply::Bulk(Bytes::from_static(c.as_bytes()))).collect();
        s.reply(Reply::Array(all));
        return Flow::Done;
    };
    if !crate::redis::categories().contains(&wanted.as_str()) {
        s.error(format!("ERR Unknown category '{}'", super::c_text(&args[2], 128)));
        return Flow::Done;
    }
    let tag = format!("@{wanted}");
    let mut found = Vec::new();
    for spec in super::table() {
        if spec.acl.contains(&tag.as_str()) {
            found.push(spec.name.to_string());
        }
        for sub in spec.subcommands {
            if sub.acl.contains(&tag.as_str()) {
                found.push(format!("{}|{}", spec.name, sub.name));
            }
        }
    }
    s.reply(Reply::Array(found.into_iter().map(|n| Reply::Bulk(n.into())).collect()));
    Flow::Done
}

fn getuser(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    wait_for(s.hub.clients.send(GetUser(text(&args[2]))), |user, s: &mut Session, _| {
        let Some(user) = user.ok().flatten() else { return s.reply(Reply::Nil) };
        let fields = user
            .getuser()
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    GetUserField::List(items) => {
                        Reply::Array(items.into_iter().map(|i| Reply::Bulk(i.into())).collect())
                    }
                    GetUserField::Set(items) => Reply::Set(items.into_iter().map(|i| Reply::Bulk(i.into())).collect()),
                    GetUserField::Text(t) => Reply::Bulk(t.into()),
                };
                (Reply::text(name), value)
            })
            .collect();
        s.reply(Reply::Map(fields));
    })
}

fn log(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if args.len() > 3 {
        return super::subcommand_syntax_error(s, args);
    }
    let count = match args.get(2) {
        None => Some(10),
        Some(a) if a.eq_ignore_ascii_case(b"reset") => None,
        Some(a) => match parse_i64(a) {
            Some(n) if n >= 0 => Some(n as usize),
            Some(_) => {
                s.error("ERR value is out of range, must be positive");
                return Flow::Done;
            }
            None => {
                s.error("ERR value is not an integer or out of range");
                return Flow::Done;
            }
        },
    };
    wait_for(s.hub.clients.send(ReadAclLog(count)), move |entries, s: &mut Session, _| {
        if count.is_none() {
            return s.reply(Reply::ok());
        }
        let now = std::time::Instant::now();
        let entries = entries.unwrap_or_default().into_iter().map(|e| {
            let age = now.duration_since(e.last).as_secs_f64();
            let d = e.denial;
            Reply::Map(vec![
                (Reply::text("count"), Reply::Int(e.count as i64)),
                (Reply::text("reason"), Reply::text(d.reason)),
                (Reply::text("context"), Reply::text(d.context)),
                (Reply::text("object"), Reply::Bulk(d.object.into())),
                (Reply::text("username"), Reply::Bulk(d.username.into())),
                (Reply::text("age-seconds"), Reply::Double((age * 1000.0).round() / 1000.0)),
                (Reply::text("client-info"), Reply::Bulk(d.client_info.into())),
            ])
        });
        s.reply(Reply::Array(entries.collect()));
    })
}

/// Whether `user` could run `args` now: Herald's commands by its table,
/// the rest by Redis 7.0.15's, channels by the user's channel rules.
fn dryrun(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let name = text(&args[2]);
    let command: Vec<Bytes> = args[3..].to_vec();
    wait_for(s.hub.clients.send(GetUser(name.clone())), move |user, s: &mut Session, _| {
        let Some(user) = user.ok().flatten() else {
            return s.error(format!("ERR User '{}' not found", super::c_text(name.as_bytes(), usize::MAX)));
        };
        // As Redis' lookupCommand: a container's second word must name one
        // of its subcommands.
        let base = text(&command[0]).to_ascii_lowercase();
        let sub = command.get(1).map(|a| text(a).to_ascii_lowercase()).unwrap_or_default();
        let found: Option<(String, i32, Vec<&str>, _)> = match super::lookup(&base) {
            Some(spec) if !spec.subcommands.is_empty() && command.len() >= 2 => {
                let sub = spec.subcommands.iter().find(|c| c.name == sub);
                sub.map(|c| (format!("{base}|{}", c.name), c.arity, c.acl.to_vec(), Some(c)))
            }
            Some(spec) => Some((base.clone(), spec.arity, spec.acl.to_vec(), Some(spec))),
            None if crate::redis::is_container(&base) && command.len() >= 2 => {
                let full = format!("{base}|{sub}");
                crate::redis::find(&full).map(|r| (full, r.arity, r.acl.clone(), None))
            }
            // Redis' table has `container|sub` names, but no command is named so.
            None if base.contains('|') => None,
            None => crate::redis::find(&base).map(|r| (base.clone(), r.arity, r.acl.clone(), None)),
        };
        let Some((full, arity, acl, herald)) = found else {
            return s.error(format!("ERR Command '{}' not found", super::c_text(&command[0], usize::MAX)));
        };
        let argc = command.len();
        if (arity >= 0 && argc != arity as usize) || (arity < 0 && argc < (-arity) as usize) {
            return s.error(format!("ERR wrong number of arguments for '{full}' command"));
        }
        if !user.may_run(&full, &acl) {
            return s.reply(Reply::Bulk(format!("This user has no permissions to run the '{full}' command").into()));
        }
        if let Some(c) = herald.and_then(|spec| super::denied_channel(spec, &command, &user)) {
            let c = super::c_text(c, usize::MAX);
            return s.reply(Reply::Bulk(format!("This user has no permissions to access the '{c}' channel").into()));
        }
        s.reply(Reply::ok());
    })
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Prints this help.",
];
