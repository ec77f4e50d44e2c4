//! herald-client's examples (the users' applications: chat, notifications,
//! event bus, metrics) run against a Herald started here.

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
}
