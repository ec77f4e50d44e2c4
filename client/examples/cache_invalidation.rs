//! Cache invalidation across app servers: each keeps a local cache and drops
//! a key when `cache:invalidate` names it.
//! `cargo run -p herald-client --example cache_invalidation [addr]`.

use std::collections::BTreeMap;

use herald_client::{Client, Event};

#[tokio::main]
async fn main() -> herald_client::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:6379".into());
    let client = Client::connect(addr).await?;
    let mut servers = Vec::new();
    for name in ["app-1", "app-2"] {
        let cache: BTreeMap<&str, &str> = [("user:42", "Ada"), ("user:43", "Grace")].into();
        servers.push((name, cache, client.subscribe(&["cache:invalidate"]).await?));
    }
    let told = client.publish("cache:invalidate", "user:42").await?;
    println!("invalidation sent to {told} servers");
    for (name, cache, events) in &mut servers {
        if let Some(Event::Message(m)) = events.next().await.transpose()? {
            let key = String::from_utf8_lossy(&m.payload).into_owned();
            cache.remove(key.as_str());
            println!("{name}: dropped {key}, cache now {:?}", cache.keys().collect::<Vec<_>>());
        }
    }
    Ok(())
}
