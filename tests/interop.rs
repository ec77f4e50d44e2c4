//! Real clients against Herald: redis-cli in separate processes, and a
//! redis-py script (both installed by scripts/test).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::cluster::Cluster;
use support::{herald, Conn};

#[test]
fn redis_cli_subscribe_in_one_process_publish_in_another() {
    let h = herald();
    let port = h.port.to_string();
    let mut sub = Command::new("redis-cli")
        .args(["-p", &port, "subscribe", "news"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli not found: run scripts/test, which installs redis-tools");
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("redis-cli output").expect("utf-8");
    // The confirmation: subscribe / news / 1.
    assert_eq!([next(), next(), next()], ["subscribe", "news", "1"]);
    let out = Command::new("redis-cli").args(["-p", &port, "publish", "news", "hello world"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!([next(), next(), next()], ["message", "news", "hello world"]);
    sub.kill().unwrap();
    sub.wait().unwrap();
    // Its session is gone once Herald has seen the close.
    let mut c = Conn::open(h.port);
    let gone = (0..100_000).any(|_| c.cmd(&["PUBSUB", "NUMSUB", "news"]).ends_with(b":0\r\n"));
    assert!(gone, "the killed subscriber's subscription never went away");
}

#[test]
fn redis_cli_psubscribe_and_plain_commands() {
    let h = herald();
    let port = h.port.to_string();
    let out = Command::new("redis-cli").args(["-p", &port, "ping"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    let out = Command::new("redis-cli").args(["-p", &port, "-3", "hello"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("proto"), "{out:?}");
    let mut sub = Command::new("redis-cli")
        .args(["-p", &port, "psubscribe", "user:*:alerts"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert_eq!([next(), next(), next()], ["psubscribe", "user:*:alerts", "1"]);
    let out = Command::new("redis-cli").args(["-p", &port, "publish", "user:7:alerts", "fire"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!([next(), next(), next(), next()], ["pmessage", "user:*:alerts", "user:7:alerts", "fire"]);
    sub.kill().unwrap();
    sub.wait().unwrap();
}

#[test]
fn redis_py_pubsub_patterns_and_get_message() {
    let h = herald();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/redis_py_check.py");
    let out = Command::new("python3").args([script, &h.port.to_string()]).output().expect("python3");
    assert!(
        out.status.success(),
        "redis-py check failed (scripts/test installs redis-py):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a client check script; fails with its output.
fn client_check(program: &str, args: &[&str], dir: &str, what: &str) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} check failed (scripts/test installs its clients):\n{text}");
    text
}

#[test]
fn ioredis_and_node_redis_messages_and_pmessages() {
    let h = herald();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");
    let out = client_check("node", &["node_check.mjs", &h.port.to_string()], dir, "ioredis/node-redis");
    assert!(out.contains(" ok"), "{out}");
}

/// redis-rs (the `redis` crate) async pub/sub: channel and pattern
/// messages, counts, then unsubscribe; RESP2 and RESP3.
#[tokio::test]
async fn redis_rs_async_pubsub() {
    use futures_util::StreamExt;
    use redis::AsyncCommands;

    let h = herald();
    for protocol in ["", "?protocol=resp3"] {
        let client = redis::Client::open(format!("redis://{}/{protocol}", h.addr())).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub.subscribe("events:order-service:created").await.unwrap();
        pubsub.psubscribe("events:*:payment_*").await.unwrap();
        let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
        let n: usize = publisher.publish("events:order-service:created", "order 1").await.unwrap();
        assert_eq!(n, 1);
        let n: usize = publisher.publish("events:billing:payment_failed", "order 2").await.unwrap();
        assert_eq!(n, 1);
        let mut messages = pubsub.on_message();
        let m = messages.next().await.unwrap();
        assert_eq!(
            (m.get_channel_name(), m.get_payload::<String>().unwrap()),
            ("events:order-service:created", "order 1".into())
        );
        let m = messages.next().await.unwrap();
        assert_eq!(m.get_pattern::<String>().unwrap(), "events:*:payment_*");
        assert_eq!(
            (m.get_channel_name(), m.get_payload::<String>().unwrap()),
            ("events:billing:payment_failed", "order 2".into())
        );
        drop(messages);
        pubsub.unsubscribe("events:order-service:created").await.unwrap();
        pubsub.punsubscribe("events:*:payment_*").await.unwrap();
        let n: usize = publisher.publish("events:order-service:created", "nobody").await.unwrap();
        assert_eq!(n, 0);
    }
}

/// redis-cli in cluster mode (`-c` follows MOVED) and redis-py's
/// RedisCluster against a 3-node Herald cluster.
#[test]
fn cluster_clients_redis_cli_and_redis_py() {
    let cluster = Cluster::start(3);
    let ports: Vec<String> = (0..3).map(|i| cluster.port(i).to_string()).collect();
    // "foo" is node 2's: asked at node 0, redis-cli follows the MOVED.
    let mut sub = Command::new("redis-cli")
        .args(["-p", &ports[2], "ssubscribe", "foo"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut lines = BufReader::new(sub.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("redis-cli output").expect("utf-8");
    assert_eq!([next(), next(), next()], ["ssubscribe", "foo", "1"]);
    let out = Command::new("redis-cli").args(["-c", "-p", &ports[0], "spublish", "foo", "via moved"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{out:?}");
    assert_eq!([next(), next(), next()], ["smessage", "foo", "via moved"]);
    sub.kill().unwrap();
    sub.wait().unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/redis_py_cluster_check.py");
    let out = Command::new("python3").arg(script).args(&ports).output().expect("python3");
    assert!(
        out.status.success(),
        "redis-py RedisCluster failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ioredis `Cluster` (ssubscribe, classic subscribe with publishes on
/// every node) and node-redis `createCluster` (sSubscribe) against a
/// 3-node Herald cluster.
#[test]
fn cluster_clients_ioredis_and_node_redis() {
    let cluster = Cluster::start(3);
    let ports: Vec<String> = (0..3).map(|i| cluster.port(i).to_string()).collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node");
    let mut args = vec!["cluster_check.mjs"];
    args.extend(ports.iter().map(String::as_str));
    let out = client_check("node", &args, dir, "ioredis Cluster / node-redis createCluster");
    assert!(out.contains("ioredis Cluster ok") && out.contains("node-redis createCluster ok"), "{out}");
}

/// redis-rs' cluster-async client (RESP3): SSUBSCRIBE routed to the slot's
/// node and its `smessage` pushed to the connection's push sender; SPUBLISH
/// and PUBLISH from any node.
#[tokio::test]
async fn cluster_clients_redis_rs_cluster_async() {
    let cluster = Cluster::start(3);
    let nodes: Vec<String> = (0..3).map(|i| format!("redis://127.0.0.1:{}/?protocol=resp3", cluster.port(i))).collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = redis::cluster::ClusterClientBuilder::new(nodes)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .build()
        .unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    for channel in ["foo", "bar", "{user:7}:events"] {
        conn.ssubscribe(channel).await.unwrap();
        let published: i64 = redis::cmd("SPUBLISH").arg(channel).arg("hello").query_async(&mut conn).await.unwrap();
        assert_eq!(published, 1, "{channel}");
        loop {
            let push = tokio::time::timeout(support::REPLY_TIMEOUT, rx.recv()).await.unwrap().unwrap();
            if push.kind == redis::PushKind::SMessage {
                assert_eq!(
                    push.data,
                    vec![redis::Value::BulkString(channel.into()), redis::Value::BulkString(b"hello".to_vec())]
                );
                break;
            }
        }
    }
}
