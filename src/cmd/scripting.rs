//! FUNCTION and SCRIPT as a Redis with no libraries and no cached scripts
//! answers them: Herald runs no scripts (SPEC §5), but tools and test
//! harnesses flush and list them before they start.

use actix::Context;
use bytes::Bytes;

use super::Spec;
use crate::protocol::Reply;
use crate::session::{Flow, Session};

const fn sub(
    name: &'static str,
    arity: i32,
    write: bool,
    summary: &'static str,
    args: &'static str,
    run: super::Run,
) -> Spec {
    Spec { since: "7.0.0", summary, args, may_replicate: write, ..Spec::new(name, arity, "scripting", run) }
}

static FUNCTION: [Spec; 7] = [
    sub("flush", -2, true, "Deleting all functions", "[ASYNC|SYNC]", function_flush),
    sub(
        "list",
        -2,
        false,
        "List information about all the functions",
        "[LIBRARYNAME pattern] [WITHCODE]",
        function_list,
    ),
    sub(
        "stats",
        2,
        false,
        "Return information about the function currently running (name, description, duration)",
        "",
        function_stats,
    ),
    sub("dump", 2, false, "Dump all functions into a serialized binary payload", "", function_dump),
    sub("delete", 3, true, "Delete a function by name", "library-name", function_delete),
    sub("kill", 2, false, "Kill the function currently in execution.", "", not_busy),
    sub("help", 2, false, "Show helpful text about the different subcommands", "", super::help),
];

static SCRIPT: [Spec; 4] = [
    sub("flush", -2, false, "Remove all the scripts from the script cache.", "[ASYNC|SYNC]", script_flush),
    sub("exists", -3, false, "Check existence of scripts in the script cache.", "sha1...", script_exists),
    sub("kill", 2, false, "Kill the script currently in execution.", "", not_busy),
    sub("help", 2, false, "Show helpful text about the different subcommands", "", super::help),
];

pub(crate) fn specs() -> [Spec; 2] {
    [
        Spec {
            since: "7.0.0",
            summary: "A container for function commands",
            help: FUNCTION_HELP,
            ..Spec::container("function", "scripting", &FUNCTION)
        },
        Spec {
            since: "2.6.0",
            summary: "A container for Lua scripts management commands",
            help: SCRIPT_HELP,
            ..Spec::container("script", "scripting", &SCRIPT)
        },
    ]
}

/// FUNCTION FLUSH and SCRIPT FLUSH: `[ASYNC|SYNC]`, as FLUSHALL takes it;
/// nothing to flush. `refusal` is each one's Redis error text.
fn flush(s: &mut Session, args: &[Bytes], refusal: &str) -> Flow {
    let mode_ok = match args.get(2) {
        None => true,
        Some(m) => args.len() == 3 && (m.eq_ignore_ascii_case(b"async") || m.eq_ignore_ascii_case(b"sync")),
    };
    if mode_ok {
        s.reply(Reply::ok());
    } else {
        s.error(refusal);
    }
    Flow::Done
}

fn function_flush(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    flush(s, args, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
}

fn script_flush(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    flush(s, args, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
}

fn function_list(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") {
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") && i + 1 < args.len() {
            i += 2;
        } else {
            s.error(format!("ERR Unknown argument {}", super::c_text(&args[i], usize::MAX)));
            return Flow::Done;
        }
    }
    s.reply(Reply::Array(vec![]));
    Flow::Done
}

fn function_stats(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    let lua = Reply::Map(vec![
        (Reply::text("libraries_count"), Reply::Int(0)),
        (Reply::text("functions_count"), Reply::Int(0)),
    ]);
    s.reply(Reply::Map(vec![
        (Reply::text("running_script"), Reply::Nil),
        (Reply::text("engines"), Reply::Map(vec![(Reply::text("LUA"), lua)])),
    ]));
    Flow::Done
}

/// Redis' payload for no libraries: RDB version 10, then the CRC64.
const EMPTY_DUMP: &[u8] = b"\x0a\x00\x5d\x9b\x5c\x40\x0f\x7f\xa2\xda";

fn function_dump(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Bulk(Bytes::from_static(EMPTY_DUMP)));
    Flow::Done
}

fn function_delete(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.error("ERR Library not found");
    Flow::Done
}

fn not_busy(s: &mut Session, _: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.error("NOTBUSY No scripts in execution right now.");
    Flow::Done
}

fn script_exists(s: &mut Session, args: &[Bytes], _: &mut Context<Session>) -> Flow {
    s.reply(Reply::Array(args[2..].iter().map(|_| Reply::Int(0)).collect()));
    Flow::Done
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];
