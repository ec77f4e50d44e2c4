//! Microservice event bus on `events:{service}:{type}` with pattern
//! subscribers: an order watcher (`events:order-service:*`) and a payment
//! auditor across all services (`events:*:payment_*`).
//! `cargo run -p herald-client --example event_bus [addr]`.

use herald_client::{Client, Event};

#[tokio::main]
async fn main() -> herald_client::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let client = Client::connect(addr).await?;
    let mut orders = client.psubscribe(&["events:order-service:*"]).await?;
    let mut payments = client.psubscribe(&["events:*:payment_*"]).await?;

    let events = [
        ("events:order-service:created", "order 1001"),
        ("events:billing-service:payment_succeeded", "order 1001, 25.00 EUR"),
        ("events:order-service:payment_failed", "order 1002"),
    ];
    for (channel, body) in events {
        let n = client.publish(channel, body).await?;
        println!("published {channel} -> {n} subscription(s)");
    }
    for (name, sub, expected) in [("orders", &mut orders, 2), ("payments", &mut payments, 2)] {
        for _ in 0..expected {
            if let Some(Event::Message(m)) = sub.next().await.transpose()? {
                let pattern = m.pattern.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                println!(
                    "[{name} via {pattern}] {}: {}",
                    String::from_utf8_lossy(&m.channel),
                    String::from_utf8_lossy(&m.payload)
                );
            }
        }
    }
    Ok(())
}
