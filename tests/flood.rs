//! Hostile and broken clients: Herald's memory stays bounded, the offenders
//! are disconnected, everyone else is served throughout (SPEC §7).

mod support;

use support::{free_port, herald_process_with, Conn};

const MIB: u64 = 1 << 20;

/// 200 MiB published at a subscriber that never reads: it is dropped at its
/// 32 MiB output limit, Herald's peak RSS stays near that limit, and a
/// second subscriber and a bystander are served all along.
#[test]
fn flood_at_a_never_reading_subscriber_is_bounded_by_its_output_limit() {
    let h = herald_process_with(free_port(), &["--pubsub-output-limit", "32mb 8mb 60"]);
    let (_, before) = h.rss();
    let mut stuck = Conn::open(h.port);
    assert!(stuck.cmd(&["SUBSCRIBE", "flood"]).starts_with(b"*3\r\n$9\r\nsubscribe"));
    let mut reader = Conn::open(h.port);
    reader.cmd(&["SUBSCRIBE", "flood"]);
    let mut bystander = Conn::open(h.port);

    let payload = vec![b'x'; 64 * 1024];
    let total = 3200; // 200 MiB
    let reader_thread = std::thread::spawn(move || {
        for i in 0..total {
            let frame = reader.frame();
            assert!(frame.len() > 64 * 1024, "message {i} truncated");
        }
    });
    let mut publisher = Conn::open(h.port);
    let mut last = Vec::new();
    for i in 0..total {
        publisher.send_cmd(&[b"PUBLISH", b"flood", &payload]);
        last = publisher.frame().to_vec();
        if i % 400 == 0 {
            assert_eq!(bystander.cmd(&["PING"]).as_ref(), b"+PONG\r\n", "bystander served during the flood");
        }
    }
    reader_thread.join().expect("the reading subscriber got all 3200 messages");
    assert_eq!(last, b":1\r\n", "the stuck subscriber was dropped");
    let received = stuck.read_to_eof();
    assert!((received.len() as u64) < 64 * MIB, "stuck subscriber got {} bytes", received.len());

    let (_, peak) = h.rss();
    let grown = peak.saturating_sub(before);
    eprintln!("flood: peak RSS {} MiB (grew {} MiB from {} MiB)", peak / MIB, grown / MIB, before / MIB);
    // The 32 MiB limit, plus messages in flight to the reader and allocator slack.
    assert!(grown < 32 * MIB + 32 * MIB, "peak RSS grew by {} MiB", grown / MIB);
}

/// A 1 GiB bulk header is refused at once in Redis' words, before any of it
/// is buffered; one just under the query-buffer limit is dropped when the
/// command passes the limit. Others keep being served.
#[test]
fn huge_bulk_headers_are_refused_without_buffering() {
    let h = herald_process_with(free_port(), &[]);
    let (_, before) = h.rss();
    let mut bystander = Conn::open(h.port);

    // The header alone earns the refusal: nothing of the payload is sent, so
    // a server that waited for (or buffered) the payload would never answer.
    // Sending the payload too would race the server's close (EPIPE).
    let mut huge = Conn::open(h.port);
    huge.send(b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$1073741824\r\n");
    let got = huge.read_to_eof();
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");

    let mut admin = Conn::open(h.port);
    assert_eq!(admin.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]).as_ref(), b"+OK\r\n");
    let mut greedy = Conn::open(h.port);
    let arg = vec![b'z'; 600 * 1024];
    greedy.send(format!("*3\r\n${}\r\n", arg.len()).as_bytes());
    greedy.send(&arg);
    // The second header would take the command past 1 MiB.
    greedy.send(format!("\r\n${}\r\n", arg.len()).as_bytes());
    assert!(greedy.read_to_eof().is_empty(), "closed without a reply, as Redis");

    assert_eq!(bystander.cmd(&["PING"]).as_ref(), b"+PONG\r\n");
    let (_, peak) = h.rss();
    assert!(peak.saturating_sub(before) < 16 * MIB, "peak RSS grew by {} MiB", (peak - before) / MIB);
}

/// The census figures INFO reports: (sessions, channel actors).
fn census(conn: &mut Conn) -> (usize, usize) {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "stats"])).into_owned();
    let field = |name: &str| -> usize {
        let line = info.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in INFO: {info}"));
        line[name.len() + 1..].trim().parse().unwrap()
    };
    (field("herald_session_actors"), field("herald_channel_actors"))
}

/// 300 clients subscribe (channels, patterns, shard channels), half of them
/// stop mid-command, and all are reset (RST, no FIN). Afterwards nothing is
/// left: one session (the observer), no channel actors, no patterns.
#[test]
fn rst_storm_and_clients_killed_mid_frame_leak_nothing() {
    let h = herald_process_with(free_port(), &[]);
    let mut observer = Conn::open(h.port);
    let mut doomed = Vec::new();
    for i in 0..300 {
        let stream = std::net::TcpStream::connect(("127.0.0.1", h.port)).unwrap();
        let mut c = Conn::from_stream(stream.try_clone().unwrap());
        c.cmd(&["SUBSCRIBE", &format!("storm:{}", i % 50), "storm:all"]);
        c.frame();
        c.cmd(&["PSUBSCRIBE", &format!("storm:{i}:*")]);
        c.cmd(&["SSUBSCRIBE", &format!("shard:{}", i % 7)]);
        if i % 2 == 0 {
            // Half a PUBLISH: the header and part of the payload.
            c.send(b"*3\r\n$7\r\nPUBLISH\r\n$9\r\nstorm:all\r\n$100\r\nonly part");
        }
        doomed.push(stream);
    }
    // Channels are dormant (no actor) until published to: wake the 51
    // classic ones, and count the shard ones in the table.
    for i in 0..50 {
        observer.cmd(&["PUBLISH", &format!("storm:{i}"), "wake"]);
    }
    observer.cmd(&["PUBLISH", "storm:all", "wake"]);
    assert_eq!(census(&mut observer), (301, 50 + 1));
    assert!(observer.cmd(&["PUBSUB", "SHARDCHANNELS"]).as_ref().starts_with(b"*7\r\n"));
    for stream in doomed {
        socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(stream); // RST
    }
    // Each reset is noticed on its own; wait for the last (the reply
    // timeout bounds this).
    let deadline = std::time::Instant::now() + support::REPLY_TIMEOUT;
    while census(&mut observer) != (1, 0) {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", census(&mut observer));
        std::thread::yield_now();
    }
    assert_eq!(observer.cmd(&["PUBSUB", "NUMPAT"]).as_ref(), b":0\r\n");
    assert_eq!(observer.cmd(&["PUBSUB", "CHANNELS"]).as_ref(), b"*0\r\n");
    assert_eq!(observer.cmd(&["PUBSUB", "SHARDCHANNELS"]).as_ref(), b"*0\r\n");
}
