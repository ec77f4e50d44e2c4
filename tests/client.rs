//! herald-client against Herald and against redis-server: the same suite
//! must pass on both, including a server killed and restarted under a
//! subscriber.

mod support;

use std::time::Duration;

use herald_client::{Backoff, Client, Config, Event, Kind, Message, PubSub, Value};
use support::{free_port, herald_process_on, redis_on, Server};

fn config(addr: String, resp3: bool) -> Config {
    Config {
        resp3,
        client_name: Some("suite".into()),
        backoff: Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200), seed: Some(1) },
        ..Config::new(addr)
    }
}

async fn message(ps: &mut PubSub) -> Message {
    match ps.next().await.expect("stream ended").expect("event") {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn suite(addr: String, resp3: bool) {
    let client = Client::with_config(config(addr, resp3)).await.expect("connect");
    client.ping().await.unwrap();
    let mut subscriber = client.subscribe(&["chat:room:1"]).await.unwrap();
    subscriber.psubscribe(&["events:*:payment_*"]).await.unwrap();
    subscriber.ssubscribe(&["shard:a"]).await.unwrap();

    assert_eq!(
        client.pubsub_numsub(&["chat:room:1", "none"]).await.unwrap(),
        [("chat:room:1".into(), 1), ("none".into(), 0)]
    );
    assert_eq!(client.pubsub_numpat().await.unwrap(), 1);
    assert_eq!(client.pubsub_channels(Some("chat:*")).await.unwrap(), ["chat:room:1"]);

    assert_eq!(client.publish("chat:room:1", "hi").await.unwrap(), 1);
    assert_eq!(client.publish("events:orders:payment_failed", b"\x00\xff").await.unwrap(), 1);
    assert_eq!(client.spublish("shard:a", "s").await.unwrap(), 1);
    let m = message(&mut subscriber).await;
    assert_eq!((m.kind, &m.channel[..], &m.payload[..]), (Kind::Channel, &b"chat:room:1"[..], &b"hi"[..]));
    let m = message(&mut subscriber).await;
    assert_eq!(m.pattern.as_deref(), Some(&b"events:*:payment_*"[..]));
    assert_eq!(&m.payload[..], b"\x00\xff");
    let m = message(&mut subscriber).await;
    assert_eq!((m.kind, &m.payload[..]), (Kind::Shard, &b"s"[..]));

    // After unsubscribe() returns, nothing more arrives for the channel.
    subscriber.unsubscribe::<&str>(&[]).await.unwrap();
    assert_eq!(client.publish("chat:room:1", "gone").await.unwrap(), 0);
    assert_eq!(client.publish("events:x:payment_ok", "still").await.unwrap(), 1);
    // Read as a Stream this time.
    match futures_util::StreamExt::next(&mut subscriber).await {
        Some(Ok(Event::Message(m))) => assert_eq!(&m.payload[..], b"still"),
        other => panic!("expected the message as a stream item, got {other:?}"),
    }
    subscriber.punsubscribe::<&str>(&[]).await.unwrap();
    assert_eq!(client.publish("events:x:payment_ok", "gone").await.unwrap(), 0);
    subscriber.sunsubscribe(&["shard:a"]).await.unwrap();
    assert_eq!(client.spublish("shard:a", "gone").await.unwrap(), 0);

    // Dropping the subscriber closes its connection: its subscriptions go.
    subscriber.subscribe(&["dropped"]).await.unwrap();
    drop(subscriber);
    let deadline = std::time::Instant::now() + support::REPLY_TIMEOUT;
    while client.pubsub_numsub(&["dropped"]).await.unwrap() != [("dropped".into(), 0)] {
        assert!(std::time::Instant::now() < deadline, "a dropped subscriber's connection stayed open");
    }

    let err = client.command(&[b"NOSUCHCOMMAND"]).await.unwrap_err();
    assert!(err.to_string().contains("unknown command"), "{err}");
    client.ping().await.expect("the connection survives an error reply");

    // Redis' COMMAND INFO holds maps inside a set in RESP3 (key specs),
    // which redis-protocol's decoder refuses: read all the same, and the
    // connection goes on.
    let info = client.command(&[b"COMMAND", b"INFO", b"spublish"]).await.expect("COMMAND INFO");
    let entry = info.items().and_then(|all| all.first()).and_then(Value::items).expect("an entry");
    assert_eq!(entry[3].as_int(), Some(1), "SPUBLISH's first key: {info:?}");
    client.ping().await.expect("the connection goes on after a set of maps");
}

#[tokio::test]
async fn suite_against_herald_resp2_and_resp3() {
    let server = herald_process_on(free_port());
    suite(server.addr(), false).await;
    suite(server.addr(), true).await;
}

#[tokio::test]
async fn suite_against_redis_resp2_and_resp3() {
    let server = redis_on(free_port());
    suite(server.addr(), false).await;
    suite(server.addr(), true).await;
}

/// Kill the server under a subscriber, start it again on the same port:
/// the subscriber says Disconnected, then Reconnected (with every
/// subscription back) before the first new message, and nothing repeats.
async fn survives_restart(start: fn(u16) -> Server, resp3: bool) {
    let port = free_port();
    let mut server = start(port);
    let client = Client::with_config(config(server.addr(), resp3)).await.unwrap();
    let mut sub = client.subscribe(&["news"]).await.unwrap();
    sub.psubscribe(&["alerts:*"]).await.unwrap();
    assert_eq!(client.publish("news", "before").await.unwrap(), 1);
    assert_eq!(&message(&mut sub).await.payload[..], b"before");

    server.kill();
    match sub.next().await.unwrap().unwrap() {
        Event::Disconnected { .. } => {}
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // The publisher's connection died too: its next call fails, the one
    // after reconnects (it never retries a publish on its own).
    let _server = start(port);
    let _ = client.ping().await;
    client.ping().await.expect("publisher reconnected");
    match sub.next().await.unwrap().unwrap() {
        Event::Reconnected { attempts, .. } => assert!(attempts >= 1),
        other => panic!("expected Reconnected, got {other:?}"),
    }
    // Reconnected comes after the resubscribe was sent; wait until the
    // server has it, then publish.
    let mut polls = 0;
    while client.pubsub_numsub(&["news"]).await.unwrap()[0].1 == 0 || client.pubsub_numpat().await.unwrap() == 0 {
        polls += 1;
        assert!(polls < 100_000, "the subscriptions never came back");
    }
    assert_eq!(client.publish("news", "after").await.unwrap(), 1);
    assert_eq!(client.publish("alerts:fire", "pattern back").await.unwrap(), 1);
    assert_eq!(&message(&mut sub).await.payload[..], b"after");
    assert_eq!(&message(&mut sub).await.payload[..], b"pattern back");
}

#[tokio::test]
async fn resubscribes_after_herald_restart() {
    survives_restart(herald_process_on, false).await;
    survives_restart(herald_process_on, true).await;
}

#[tokio::test]
async fn resubscribes_after_redis_restart() {
    survives_restart(redis_on, false).await;
    survives_restart(redis_on, true).await;
}

/// An idle subscriber pings at its `idle_ping` pace, no faster, and a
/// healthy server's answers keep it connected: over 1.2 s of silence with
/// a 200 ms idle ping it sends about six PINGs and yields no event (no
/// `Disconnected`).
#[tokio::test]
async fn an_idle_subscriber_pings_at_its_pace_and_stays_connected() {
    let server = support::herald_process_on(free_port());
    let addr = format!("127.0.0.1:{}", server.port);
    let quiet = Config {
        idle_ping: Duration::from_millis(200),
        response_timeout: Duration::from_secs(1),
        ..config(addr.clone(), false)
    };
    let client = Client::with_config(config(addr, false)).await.expect("connect");
    let quiet_client = Client::with_config(quiet).await.expect("connect");
    let mut subscriber = quiet_client.subscribe(&["quiet"]).await.unwrap();
    let pings_before = ping_calls(&client).await;
    // The silence is what is tested: any event in it is a failure.
    if let Ok(event) = tokio::time::timeout(Duration::from_millis(1200), subscriber.next()).await {
        panic!("an idle, healthy subscriber yielded {event:?}");
    }
    let pings = ping_calls(&client).await - pings_before;
    assert!((3..=9).contains(&pings), "{pings} PINGs in 1.2 s at a 200 ms idle ping");
}

/// PING calls so far (INFO commandstats), this client's included.
async fn ping_calls(client: &Client) -> u64 {
    let info = client.command(&[b"INFO", b"commandstats"]).await.unwrap();
    let text = String::from_utf8_lossy(info.as_bytes().unwrap_or_default()).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// herald-client's cluster mode against a 3-node Herald cluster and a
/// 3-node Redis cluster: shard channels of several nodes in one merged
/// subscriber, SPUBLISH routed by slot, `-MOVED` followed by a client that
/// knew no slot (and learnt it), classic pub/sub across nodes.
#[tokio::test]
async fn cluster_client_routes_by_slot_and_follows_moved() {
    use herald_client::{slot_of, ClusterClient, TcpConnector};
    use support::cluster::{redis_cluster, Cluster};

    let herald = Cluster::start(3);
    let redis = redis_cluster(3);
    let clusters: [(&str, Vec<u16>); 2] =
        [("herald", herald.nodes.iter().map(|n| n.port).collect()), ("redis", redis.iter().map(|n| n.port).collect())];
    for (name, ports) in clusters {
        let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let client = ClusterClient::connect(&seeds).await.unwrap();
        // "foo" is node 2's slot, "bar" node 0's.
        assert_eq!(client.node_for(slot_of(b"foo")), seeds[2], "{name}");
        let channels = ["foo", "bar", "{user:7}:events"];
        let mut sub = client.ssubscribe(&channels).await.unwrap();
        assert!(sub.nodes().count() >= 2, "{name}: one connection per node serving a slot");
        for channel in channels {
            assert_eq!(client.spublish(channel, "hello").await.unwrap(), 1, "{name} {channel}");
            let event = tokio::time::timeout(support::REPLY_TIMEOUT, sub.next()).await.unwrap().unwrap().unwrap();
            let Event::Message(m) = event else { panic!("{name}: {event:?}") };
            assert_eq!((m.kind, &m.channel[..], &m.payload[..]), (Kind::Shard, channel.as_bytes(), &b"hello"[..]));
        }
        let lazy = ClusterClient::lazy(Config::new(seeds[0].clone()), std::sync::Arc::new(TcpConnector), &seeds);
        assert_eq!(lazy.node_for(slot_of(b"foo")), seeds[0], "{name}: knows nothing yet");
        assert_eq!(lazy.spublish("foo", "moved").await.unwrap(), 1, "{name}");
        assert_eq!(lazy.node_for(slot_of(b"foo")), seeds[2], "{name}: learnt from MOVED");
        let event = tokio::time::timeout(support::REPLY_TIMEOUT, sub.next()).await.unwrap().unwrap().unwrap();
        assert!(matches!(&event, Event::Message(m) if &m.payload[..] == b"moved"), "{name}: {event:?}");

        let mut news = client.subscribe(&["news"]).await.unwrap();
        for seed in &seeds {
            Client::connect(seed.clone()).await.unwrap().publish("news", seed.as_bytes()).await.unwrap();
            let event = tokio::time::timeout(support::REPLY_TIMEOUT, news.next()).await.unwrap().unwrap().unwrap();
            assert!(matches!(&event, Event::Message(m) if m.payload == seed.as_bytes()), "{name}: {event:?}");
        }
    }
}
