//! `MembershipStore` on etcd's v3 API (the etcd-client crate): leases,
//! a prefix read, a watch from a revision, and the election API.

use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};

use super::store::{Entry, Leader, MembershipStore, Snapshot, StoreResult, Written};

/// The cluster's keys on an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    /// `/herald/<name>/`.
    prefix: String,
}

fn failed(e: etcd_client::Error) -> String {
    e.to_string()
}

impl EtcdStore {
    /// A client for `endpoints` (`host:port`, or URLs); it connects when
    /// first used and fails over between the endpoints.
    pub async fn connect(endpoints: &[String], cluster: &str) -> StoreResult<EtcdStore> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2));
        let client = Client::connect(endpoints, Some(options)).await.map_err(failed)?;
        Ok(EtcdStore { client, prefix: format!("/herald/{cluster}/") })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl MembershipStore for EtcdStore {
    async fn grant(&self, ttl: Duration) -> StoreResult<(i64, Duration)> {
        let granted = self.client.clone().lease_grant(ttl.as_secs().max(1) as i64, None).await.map_err(failed)?;
        Ok((granted.id(), Duration::from_secs(granted.ttl().max(0) as u64)))
    }

    async fn keep_alive(&self, lease: i64) -> StoreResult<Option<Duration>> {
        let (mut keeper, mut answers) = self.client.clone().lease_keep_alive(lease).await.map_err(failed)?;
        keeper.keep_alive().await.map_err(failed)?;
        match answers.message().await.map_err(failed)? {
            Some(answer) if answer.ttl() > 0 => Ok(Some(Duration::from_secs(answer.ttl() as u64))),
            Some(_) => Ok(None),
            None => Err("etcd closed the keep-alive stream".into()),
        }
    }

    async fn revoke(&self, lease: i64) -> StoreResult<()> {
        self.client.clone().lease_revoke(lease).await.map(|_| ()).map_err(failed)
    }

    async fn put(&self, key: &str, value: &str, lease: i64) -> StoreResult<()> {
        let options = PutOptions::new().with_lease(lease);
        self.client.clone().put(self.key(key), value, Some(options)).await.map(|_| ()).map_err(failed)
    }

    async fn snapshot(&self) -> StoreResult<Snapshot> {
        let got = self.client.clone().get(self.prefix.clone(), Some(GetOptions::new().with_prefix())).await;
        let got = got.map_err(failed)?;
        let revision = got.header().map_or(0, |h| h.revision());
        let entries = got
            .kvs()
            .iter()
            .map(|kv| Entry {
                key: String::from_utf8_lossy(&kv.key()[self.prefix.len()..]).into_owned(),
                value: String::from_utf8_lossy(kv.value()).into_owned(),
                mod_revision: kv.mod_revision(),
            })
            .collect();
        Ok(Snapshot { revision, entries })
    }

    async fn changed(&self, revision: i64) -> StoreResult<i64> {
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut watch = self.client.clone().watch(self.prefix.clone(), Some(options)).await.map_err(failed)?;
        loop {
            let Some(answer) = watch.message().await.map_err(failed)? else {
                return Err("etcd closed the watch".into());
            };
            if answer.compact_revision() > 0 || answer.canceled() {
                return Err(format!("watch cancelled: {}", answer.cancel_reason()));
            }
            if let Some(latest) = answer.events().iter().filter_map(|e| e.kv()).map(|kv| kv.mod_revision()).max() {
                return Ok(latest);
            }
        }
    }

    async fn campaign(&self, lease: i64, value: &str) -> StoreResult<Leader> {
        let elected = self.client.clone().campaign(self.key("coordinator"), value, lease).await.map_err(failed)?;
        let leader = elected.leader().ok_or("etcd elected no leader key")?;
        Ok(Leader { key: leader.key().to_vec(), revision: leader.rev() })
    }

    async fn write_as_leader(&self, leader: &Leader, key: &str, value: &str, expected: i64) -> StoreResult<Written> {
        let key = self.key(key);
        let txn = Txn::new()
            .when([
                Compare::create_revision(leader.key.clone(), CompareOp::Equal, leader.revision),
                Compare::mod_revision(key.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(leader.key.clone(), None)]);
        let done = self.client.clone().txn(txn).await.map_err(failed)?;
        if done.succeeded() {
            return Ok(Written::Done);
        }
        let still = done.op_responses().into_iter().any(|r| match r {
            etcd_client::TxnOpResponse::Get(got) => got.kvs().iter().any(|kv| kv.create_revision() == leader.revision),
            _ => false,
        });
        Ok(if still { Written::Stale } else { Written::NotLeader })
    }
}
