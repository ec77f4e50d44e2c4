//! PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP.

use actix::Context;
use bytes::Bytes;
use futures_util::future::join_all;

use super::{Channels, Spec};
use crate::broker::directory::{ListChannels, NumSub};
use crate::broker::pattern_index::NumPat;
use crate::protocol::push::Kind;
use crate::protocol::Reply;
use crate::session::{wait_for, Flow, Session};

static SUBCOMMANDS: [Spec; 6] = [
    Spec {
        since: "2.8.0",
        summary: "List active channels",
        args: "[pattern]",
        channels: Channels::Unchecked,
        ..Spec::new("channels", -2, "pubsub", channels)
    },
    Spec {
        since: "2.8.0",
        summary: "Get the count of subscribers for channels",
        args: "[channel...]",
        channels: Channels::Unchecked,
        ..Spec::new("numsub", -2, "pubsub", numsub)
    },
    Spec {
        since: "2.8.0",
        summary: "Get the count of unique patterns pattern subscriptions",
        ..Spec::new("numpat", 2, "pubsub", numpat)
    },
    Spec {
        since: "7.0.0",
        summary: "List active shard channels",
        args: "[pattern]",
        channels: Channels::Unchecked,
        ..Spec::new("shardchannels", -2, "pubsub", shardchannels)
    },
    Spec {
        since: "7.0.0",
        summary: "Get the count of subscribers for shard channels",
        args: "[shardchannel...]",
        channels: Channels::Unchecked,
        ..Spec::new("shardnumsub", -2, "pubsub", shardnumsub)
    },
    Spec {
        since: "6.2.0",
        summary: "Show helpful text about the different subcommands",
        ..Spec::new("help", 2, "pubsub", super::help)
    },
];

pub(crate) fn spec() -> Spec {
    Spec {
        since: "2.8.0",
        summary: "A container for Pub/Sub commands",
        help: HELP,
        ..Spec::container("pubsub", "pubsub", &SUBCOMMANDS)
    }
}

const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

fn list(s: &mut Session, args: &[Bytes], kind: Kind) -> Flow {
    if args.len() > 3 {
        return super::subcommand_syntax_error(s, args);
    }
    let pattern = args.get(2).cloned();
    let asks: Vec<_> =
        s.hub.directories().iter().map(|d| d.send(ListChannels { kind, pattern: pattern.clone() })).collect();
    wait_for(join_all(asks), |lists, s: &mut Session, _| {
        let names = lists.into_iter().filter_map(Result::ok).flatten().map(Reply::Bulk).collect();
        s.reply(Reply::Array(names));
    })
}

fn count(s: &mut Session, args: &[Bytes], kind: Kind) -> Flow {
    let channels = args[2..].to_vec();
    let asks: Vec<_> =
        channels.iter().map(|c| s.hub.directory(c).send(NumSub { kind, channels: vec![c.clone()] })).collect();
    wait_for(join_all(asks), move |counts, s: &mut Session, _| {
        let mut out = Vec::with_capacity(channels.len() * 2);
        for (channel, n) in channels.into_iter().zip(counts) {
            let n = n.ok().and_then(|v| v.first().copied()).unwrap_or(0);
            out.push(Reply::Bulk(channel));
            out.push(Reply::Int(n as i64));
        }
        s.reply(Reply::Array(out));
    })
}

fn channels(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    list(s, args, Kind::Channel)
}

fn shardchannels(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    list(s, args, Kind::Shard)
}

fn numsub(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    count(s, args, Kind::Channel)
}

fn shardnumsub(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    count(s, args, Kind::Shard)
}

fn numpat(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    wait_for(s.hub.patterns.send(NumPat), |n, s: &mut Session, _| s.reply(Reply::Int(n.unwrap_or(0) as i64)))
}
