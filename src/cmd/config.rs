//! CONFIG GET | SET | RESETSTAT | HELP for Herald's own settings.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::glob;
use crate::protocol::Reply;
use crate::registry::{GetConfig, RewriteConfig, SetConfig};
use crate::session::{wait_for, Flow, Session};

static SUBCOMMANDS: [Spec; 5] = [
    Spec {
        since: "2.0.0",
        summary: "Get the values of configuration parameters",
        args: "parameter...",
        ..Spec::new("get", -3, "server", get)
    },
    Spec {
        since: "2.0.0",
        summary: "Set configuration parameters to the given values",
        args: "parameter value...",
        ..Spec::new("set", -4, "server", set)
    },
    Spec {
        since: "2.8.0",
        summary: "Rewrite the configuration file with the in memory configuration",
        ..Spec::new("rewrite", 2, "server", rewrite)
    },
    Spec {
        since: "2.0.0",
        summary: "Reset the stats returned by INFO",
        ..Spec::new("resetstat", 2, "server", resetstat)
    },
    Spec {
        since: "5.0.0",
        summary: "Show helpful text about the different subcommands",
        ..Spec::new("help", 2, "server", super::help)
    },
];

pub(crate) fn spec() -> Spec {
    Spec {
        since: "2.0.0",
        summary: "A container for server configuration commands",
        help: HELP,
        ..Spec::container("config", "server", &SUBCOMMANDS)
    }
}

fn get(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let patterns: Vec<Bytes> = args[2..].iter().map(|p| Bytes::from(p.to_ascii_lowercase())).collect();
    wait_for(s.hub.clients.send(GetConfig), move |config, s: &mut Session, _| {
        let config = config.unwrap_or_else(|_| (*s.settings).clone());
        let pairs = config
            .entries()
            .into_iter()
            .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes())))
            .map(|(name, value)| (Reply::text(name), Reply::text(&value)))
            .collect();
        s.reply(Reply::Map(pairs));
    })
}

fn set(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    if !args.len().is_multiple_of(2) {
        s.error("ERR wrong number of arguments for 'config|set' command");
        return Flow::Done;
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| (String::from_utf8_lossy(&p[0]).to_ascii_lowercase(), String::from_utf8_lossy(&p[1]).into_owned()))
        .collect();
    wait_for(s.hub.clients.send(SetConfig(pairs)), |result, s: &mut Session, _| match result {
        Ok(Ok(())) => s.reply(Reply::ok()),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR server is shutting down"),
    })
}

fn rewrite(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    wait_for(s.hub.clients.send(RewriteConfig), |result, s: &mut Session, _| match result {
        Ok(Ok(())) => s.reply(Reply::ok()),
        Ok(Err(e)) => s.error(e),
        Err(_) => s.error("ERR server is shutting down"),
    })
}

/// Zeroes what Redis' RESETSTAT zeroes: Commandstats, Errorstats,
/// Latencystats, the connection and pub/sub counters of INFO stats.
fn resetstat(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.hub.stats.reset(&s.hub.census.traffic);
    s.hub.census.reset_counters();
    wait_for(s.hub.clients.send(crate::registry::ResetStats), |_, s: &mut Session, _| s.reply(Reply::ok()))
}

const HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];
