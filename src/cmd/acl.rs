//! ACL WHOAMI | LIST | USERS | SETUSER | DELUSER | CAT: the users live in the
//! client registry (see `crate::acl`).

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::protocol::Reply;
use crate::registry::{DeleteUsers, ListUsers, SetUser};
use crate::session::{wait_for, Flow, Session};

const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

static SUBCOMMANDS: [Spec; 6] = [
    Spec {
        flags: &["noscript", "loading", "stale"],
        acl: &["@slow"],
        since: "6.0.0",
        summary: "Return the name of the user associated to the current connection",
        ..Spec::new("whoami", 2, "server", whoami)
    },
    Spec {
        flags: ADMIN,
        acl: ADMIN_ACL,
        since: "6.0.0",
        summary: "List the current ACL rules in ACL config file format",
        ..Spec::new("list", 2, "server", list)
    },
    Spec {
        flags: ADMIN,
        acl: ADMIN_ACL,
        since: "6.0.0",
        summary: "List the username of all the configured ACL rules",
        ..Spec::new("users", 2, "server", users)
    },
    Spec {
        flags: ADMIN,
        acl: ADMIN_ACL,
        since: "6.0.0",
        summary: "Modify or create the rules for a specific ACL user",
        args: "username [rule...]",
        ..Spec::new("setuser", -3, "server", setuser)
    },
    Spec {
        flags: ADMIN,
        acl: ADMIN_ACL,
        since: "6.0.0",
        summary: "Remove the specified ACL users and the associated rules",
        args: "username...",
        ..Spec::new("deluser", -3, "server", deluser)
    },
    Spec {
        flags: &["noscript", "loading", "stale"],
        acl: &["@slow"],
        since: "6.0.0",
        summary: "List the ACL categories or the commands inside a category",
        args: "[categoryname]",
        ..Spec::new("cat", -2, "server", cat)
    },
];

pub fn spec() -> Spec {
    Spec {
        since: "6.0.0",
        summary: "A container for Access List Control commands",
        ..Spec::container("acl", "server", &SUBCOMMANDS)
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn whoami(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Bulk(Bytes::from(s.user.name.clone())));
    Flow::Done
}

fn names(s: &mut Session, names_only: bool) -> Flow {
    let asked = s.broker.clients.send(ListUsers { names_only });
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
    wait_for(s.broker.clients.send(set), |done, s: &mut Session, _| match done {
        Ok(Ok(())) => s.reply(Reply::ok()),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR the client registry is gone"),
    })
}

fn deluser(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let delete = DeleteUsers(args[2..].iter().map(text).collect());
    wait_for(s.broker.clients.send(delete), |done, s: &mut Session, _| match done {
        Ok(Ok(n)) => s.reply(Reply::Int(n as i64)),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR the client registry is gone"),
    })
}

/// Every category, or the commands (and subcommands) in one.
fn cat(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let Some(wanted) = args.get(2).map(|c| text(c).to_ascii_lowercase()) else {
        let all = super::categories().iter().map(|c| Reply::Bulk(Bytes::from_static(c.as_bytes()))).collect();
        s.reply(Reply::Array(all));
        return Flow::Done;
    };
    if !super::categories().contains(&wanted.as_str()) {
        s.error(format!("ERR Unknown category '{wanted}'"));
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
