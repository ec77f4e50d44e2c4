//! Redis 7.0.15's own Tcl pub/sub tests (`../shared/reference/
//! redis-tests-7.0.15`, run in external mode) against Herald: every test
//! redis-server 7.0.15 passes there must pass here. Needs `tclsh` (Debian's
//! `tcl`, installed by scripts/test).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A run gets this long before it counts as hung (it takes about a second).
const DEADLINE: Duration = Duration::from_secs(60);

fn suite() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/redis-tests-7.0.15");
    assert!(dir.join("tests/test_helper.tcl").exists(), "Redis' Tcl tests are not at {}", dir.display());
    dir
}

/// Copies the suite (the harness writes under its own tests/tmp) and adds
/// `unit/pubsubshard1`: the first block of pubsubshard.tcl, whose tests run
/// against any server once its `external:skip` tag is dropped.
fn copy_suite() -> PathBuf {
    let to = std::env::temp_dir().join(format!("herald-redis-tcl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    let status = Command::new("cp").arg("-r").arg(suite()).arg(&to).status().expect("cp");
    assert!(status.success());
    Command::new("chmod").args(["-R", "u+w"]).arg(&to).status().expect("chmod");
    let shard = std::fs::read_to_string(to.join("tests/unit/pubsubshard.tcl")).expect("pubsubshard.tcl");
    let mut first = Vec::new();
    for (i, line) in shard.lines().enumerate() {
        if i > 0 && line.starts_with("start_server") {
            break;
        }
        first.push(line.replace(" external:skip", ""));
    }
    std::fs::write(to.join("tests/unit/pubsubshard1.tcl"), first.join("\n") + "\n").expect("write");
    to
}

/// Runs one unit against `port`; the names of the tests that passed, and
/// the lines that report a failure.
fn run_unit(dir: &Path, port: u16, unit: &str, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    // coreutils' `timeout` ends a hung run (exit 124) without the test
    // polling the child.
    let out = Command::new("timeout")
        .current_dir(dir)
        .arg(DEADLINE.as_secs().to_string())
        .args(["tclsh", "tests/test_helper.tcl", "--host", "127.0.0.1", "--port", &port.to_string(), "--clients", "1"])
        .args(["--single", unit])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("timeout/tclsh not found: scripts/test installs Debian's tcl");
    assert_ne!(out.status.code(), Some(124), "{unit} did not finish in {DEADLINE:?} (a test hangs)");
    let status = out.status;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let plain = strip_ansi(&text);
    let passed = plain.lines().filter_map(|l| l.strip_prefix("[ok]: ")).map(|l| l.to_string()).collect();
    let failed: Vec<String> = plain
        .lines()
        .filter(|l| {
            l.starts_with("[err]") || l.starts_with("[exception]") || l.contains("Killing") || l.contains("Test server")
        })
        .map(|l| l.to_string())
        .collect();
    assert!(status.success() || !failed.is_empty(), "{unit} failed without naming a test:\n{plain}");
    (passed, failed)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// On one arbiter, as Redis runs. With more, "PUBLISH/SUBSCRIBE after
/// UNSUBSCRIBE without arguments" races: it publishes from a second
/// connection without reading the unsubscribe confirmations (its helper
/// reads none when no channel is named), which SPEC §2.3 does not order.
#[test]
fn redis_pubsub_tests_pass_against_herald() {
    let dir = copy_suite();
    let herald = support::herald_on_threads(herald::Config::default(), 1);
    let (passed, failed) = run_unit(&dir, herald.port, "unit/pubsub", &["--skiptest", "/^Keyspace"]);
    assert!(failed.is_empty(), "unit/pubsub failed: {failed:#?}");
    // redis-server 7.0.15 passes 15 of them (the keyspace-notification
    // tests need keys).
    assert_eq!(passed.len(), 15, "unit/pubsub passed only {passed:#?}");
    let (passed, failed) = run_unit(&dir, herald.port, "unit/pubsubshard1", &[]);
    assert!(failed.is_empty(), "unit/pubsubshard failed: {failed:#?}");
    assert_eq!(passed.len(), 9, "unit/pubsubshard passed only {passed:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
