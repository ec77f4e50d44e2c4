//! Live metrics: a publisher emits `metrics:{host}:cpu` samples, a
//! dashboard follows `metrics:*` and survives server restarts (it says so
//! when it may have missed samples).
//! `cargo run -p herald-client --example metrics [addr] [samples]`.

use std::time::Duration;

use herald_client::{Client, Event};

#[tokio::main]
async fn main() -> herald_client::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let samples: u32 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(10);
    let client = Client::connect(addr).await?;
    let mut dashboard = client.psubscribe(&["metrics:*"]).await?;

    let publisher = client.clone();
    let emitter = tokio::spawn(async move {
        for i in 0..samples {
            let cpu = 20.0 + (i as f64 * 7.3) % 60.0;
            // A failed publish is reported, not retried: a retry could count twice.
            if let Err(e) = publisher.publish("metrics:web-1:cpu", format!("{cpu:.1}")).await {
                eprintln!("sample {i} not sent: {e}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let mut seen = 0;
    while seen < samples {
        match dashboard.next().await.transpose()? {
            Some(Event::Message(m)) => {
                seen += 1;
                println!("{} = {}%", String::from_utf8_lossy(&m.channel), String::from_utf8_lossy(&m.payload));
            }
            Some(Event::Disconnected { reason }) => {
                println!("(lost the server: {reason}; samples may be missing)")
            }
            Some(Event::Reconnected { down_for, .. }) => println!("(back after {down_for:?})"),
            Some(Event::Unsubscribed { name, .. }) => println!("(the server ended {name:?})"),
            None => break,
        }
    }
    emitter.await.expect("emitter");
    Ok(())
}
