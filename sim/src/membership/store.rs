//! `herald::MembershipStore` over turmoil's network to the stand-in
//! (`standin.rs`): one connection per call, so a partition or a crash
//! shows as a call that fails or times out, as a lost etcd does.

use std::time::Duration;

use herald::{Entry, Leader, MembershipStore, Snapshot, StoreResult, Written};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use turmoil::net::TcpStream;

use super::standin::{line, words, PORT};

/// The stand-in's host.
pub const HOST: &str = "etcd";
/// A call that waits (for a change, for an election) gives up after
/// this, as a watch or a campaign on a lost etcd does; others sooner.
const WAITING: Duration = Duration::from_millis(1000);
const CALL: Duration = Duration::from_millis(200);

#[derive(Clone, Default)]
pub struct SimStore;

async fn call(request: &[&str], within: Duration) -> StoreResult<Vec<String>> {
    let exchange = async {
        let stream = TcpStream::connect((HOST, PORT)).await.map_err(|e| e.to_string())?;
        let (read, mut write) = tokio::io::split(stream);
        write.write_all(line(request).as_bytes()).await.map_err(|e| e.to_string())?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await.map_err(|e| e.to_string())?;
        let answer = words(&answer);
        match answer.first().map(String::as_str) {
            None => Err("the stand-in closed".to_string()),
            Some("ERR") => Err(answer.get(1).cloned().unwrap_or_default()),
            Some(_) => Ok(answer),
        }
    };
    tokio::time::timeout(within, exchange).await.map_err(|_| "timed out".to_string())?
}

fn int(words: &[String], i: usize) -> i64 {
    words.get(i).and_then(|w| w.parse().ok()).unwrap_or_default()
}

impl MembershipStore for SimStore {
    async fn grant(&self, ttl: Duration) -> StoreResult<(i64, Duration)> {
        let w = call(&["GRANT", &ttl.as_millis().to_string()], CALL).await?;
        Ok((int(&w, 0), Duration::from_millis(int(&w, 1) as u64)))
    }

    async fn keep_alive(&self, lease: i64) -> StoreResult<Option<Duration>> {
        let w = call(&["KEEPALIVE", &lease.to_string()], CALL).await?;
        Ok(match int(&w, 0) {
            0 => None,
            ms => Some(Duration::from_millis(ms as u64)),
        })
    }

    async fn revoke(&self, lease: i64) -> StoreResult<()> {
        call(&["REVOKE", &lease.to_string()], CALL).await.map(|_| ())
    }

    async fn put(&self, key: &str, value: &str, lease: i64) -> StoreResult<()> {
        call(&["PUT", key, value, &lease.to_string()], CALL).await.map(|_| ())
    }

    async fn snapshot(&self) -> StoreResult<Snapshot> {
        let w = call(&["SNAPSHOT"], CALL).await?;
        let entries = w[1..]
            .chunks(3)
            .map(|e| Entry { key: e[0].clone(), value: e[1].clone(), mod_revision: e[2].parse().unwrap_or_default() })
            .collect();
        Ok(Snapshot { revision: int(&w, 0), entries })
    }

    async fn changed(&self, revision: i64) -> StoreResult<i64> {
        Ok(int(&call(&["CHANGED", &revision.to_string()], WAITING).await?, 0))
    }

    async fn campaign(&self, lease: i64, value: &str) -> StoreResult<Leader> {
        let w = call(&["CAMPAIGN", &lease.to_string(), value], WAITING).await?;
        Ok(Leader { key: w[0].clone().into_bytes(), revision: int(&w, 1) })
    }

    async fn write_as_leader(&self, leader: &Leader, key: &str, value: &str, expected: i64) -> StoreResult<Written> {
        let leader_key = String::from_utf8_lossy(&leader.key).into_owned();
        let w = call(&["WRITE", &leader_key, &leader.revision.to_string(), key, value, &expected.to_string()], CALL)
            .await?;
        Ok(match w[0].as_str() {
            "Done" => Written::Done,
            "Stale" => Written::Stale,
            _ => Written::NotLeader,
        })
    }
}
