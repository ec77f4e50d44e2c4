//! Per-user notifications plus a broadcast channel: each user listens on
//! `notifications:user:{id}` and `notifications:broadcast`.
//! `cargo run -p herald-client --example notifications [addr]`.

use herald_client::{Client, Event};

#[tokio::main]
async fn main() -> herald_client::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let client = Client::connect(addr).await?;
    let mut user7 = client.subscribe(&["notifications:user:7", "notifications:broadcast"]).await?;

    client.publish("notifications:user:7", r#"{"type":"friend_request","from":3}"#).await?;
    client.publish("notifications:user:8", r#"{"type":"like"}"#).await?; // not for user 7
    let everyone = client.publish("notifications:broadcast", r#"{"type":"maintenance","at":"02:00"}"#).await?;
    println!("broadcast reached {everyone} subscriber(s)");

    for _ in 0..2 {
        if let Some(Event::Message(m)) = user7.next().await.transpose()? {
            println!("user 7 <- {}: {}", String::from_utf8_lossy(&m.channel), String::from_utf8_lossy(&m.payload));
        }
    }
    Ok(())
}
