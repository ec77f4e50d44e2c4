//! Chat room: members subscribe to `chat:room:{id}` and post to it.
//! Run a Herald (`cargo run --release`), then
//! `cargo run -p herald-client --example chat_room [addr]`.

use herald_client::{Client, Event};

#[tokio::main]
async fn main() -> herald_client::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let room = "chat:room:42";
    let client = Client::connect(addr).await?;
    let mut alice = client.subscribe(&[room]).await?;
    let mut bob = client.subscribe(&[room]).await?;

    for (who, text) in [("alice", "hi bob"), ("bob", "hi alice"), ("alice", "bye")] {
        let delivered = client.publish(room, format!("{who}: {text}")).await?;
        println!("{who} posted to {delivered} members");
    }
    for (name, member) in [("alice", &mut alice), ("bob", &mut bob)] {
        for _ in 0..3 {
            if let Some(Event::Message(m)) = member.next().await.transpose()? {
                println!("[{name}'s screen] {}", String::from_utf8_lossy(&m.payload));
            }
        }
    }
    Ok(())
}
