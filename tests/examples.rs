//! The users' applications (chat, notifications, event bus, cache
//! invalidation, metrics) as runnable examples in Rust (herald-client),
//! Python (redis-py) and TypeScript (ioredis), run against a Herald started
//! here. scripts/test installs the Python and Node packages.

mod support;

use std::process::Command;

fn run_example(name: &str, addr: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args(["run", "-q", "-p", "herald-client", "--example", name, "--", addr])
        .output()
        .expect("cargo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn examples_run_against_herald() {
    let h = support::herald();
    let addr = format!("127.0.0.1:{}", h.port);
    let chat = run_example("chat_room", &addr);
    assert_eq!(chat.matches("posted to 2 members").count(), 3, "{chat}");
    assert!(chat.contains("[bob's screen] alice: bye"), "{chat}");
    let notes = run_example("notifications", &addr);
    assert!(notes.contains("user 7 <- notifications:broadcast"), "{notes}");
    assert!(!notes.contains("like"), "user 7 got user 8's notification: {notes}");
    let bus = run_example("event_bus", &addr);
    assert!(bus.contains("events:order-service:payment_failed -> 2 subscription(s)"), "{bus}");
    assert_eq!(bus.matches("[payments via events:*:payment_*]").count(), 2, "{bus}");
    let metrics = run_example("metrics", &addr);
    assert_eq!(metrics.matches("metrics:web-1:cpu = ").count(), 10, "{metrics}");
    let cache = run_example("cache_invalidation", &addr);
    assert_cache_invalidation(&cache);
}

/// What every language's version of each application must print.
fn assert_same_applications(run: impl Fn(&str) -> String) {
    let chat = run("chat_room");
    assert_eq!(chat.matches("posted to 2 members").count(), 3, "{chat}");
    assert_eq!(chat.matches("'s screen] ").count(), 6, "{chat}");
    assert!(chat.contains("[bob's screen] alice: bye"), "{chat}");
    let notes = run("notifications");
    assert!(notes.contains("user 7 <- notifications:user:7: {\"type\":\"friend_request\""), "{notes}");
    assert!(notes.contains("user 7 <- notifications:broadcast: "), "{notes}");
    assert!(!notes.contains("like"), "user 7 got user 8's notification: {notes}");
    let bus = run("event_bus");
    assert!(bus.contains("events:order-service:payment_failed -> 2 subscription(s)"), "{bus}");
    assert_eq!(bus.matches("[payments via events:*:payment_*]").count(), 2, "{bus}");
    assert_eq!(bus.matches("[audit via events:order-service:*]").count(), 2, "{bus}");
    assert_cache_invalidation(&run("cache_invalidation"));
}

fn assert_cache_invalidation(out: &str) {
    assert!(out.contains("invalidation sent to 2 servers"), "{out}");
    assert_eq!(out.matches("dropped user:42, cache now ").count(), 2, "{out}");
    assert!(!out.contains("user:42\"") && !out.contains("now user:42"), "{out}");
}

fn run_in(dir: &str, program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{program} {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn python_examples_run_against_herald() {
    let h = support::herald();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python");
    assert_same_applications(|name| run_in(dir, "python3", &[&format!("{name}.py"), &h.port.to_string()]));
}

#[test]
fn typescript_examples_typecheck_and_run_against_herald() {
    let h = support::herald();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/typescript");
    run_in(dir, "npx", &["--no-install", "tsc", "-p", "."]);
    assert_same_applications(|name| {
        run_in(dir, "npx", &["--no-install", "tsx", &format!("{name}.ts"), &h.port.to_string()])
    });
}
