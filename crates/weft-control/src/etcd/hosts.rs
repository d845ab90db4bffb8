//! Hosts of a multi-host mesh and their workload subnets, allocated through etcd.
//!
//! Every host that joins gets a block of its own from the mesh-wide range (a `/24` of
//! `10.213.0.0/16`, from `10.213.1.0/24` on: `10.213.0.0/24` stays the single-host default
//! bridge's), so the addresses its workloads get never collide with another host's. A block
//! is claimed with one transaction that writes two keys only if neither exists:
//!
//! | key | value |
//! |---|---|
//! | `<p>/hosts/<name>` | the host's record (JSON: its block and tunnel address) |
//! | `<p>/blocks/<a.b.c.d>-<len>` | the name of the host holding the block |
//!
//! so two hosts joining at once through two replicas never get the same block, a host never
//! gets two, and a host asking for a block another host holds is refused, naming the holder.
//! Joining again returns the block the host already has.

use std::net::{IpAddr, Ipv4Addr};

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use super::{Etcd, EtcdError};

/// The mesh-wide range blocks are cut from, and the blocks' length.
const RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 213, 0, 0), 16);
const BLOCK_LEN: u8 = 24;
/// Claims that may race with other joins before a join gives up.
const TRIES: usize = 8;

/// A host's record in etcd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostRecord {
    pub name: String,
    /// The host's workload subnet (`10.213.N.0/24`).
    pub block: String,
    /// Where other hosts reach this host's tunnel (its address on the hosts' network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
}

/// Why a host cannot have the block it asked for.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Invalid(String),
    #[error("block {block} belongs to host {holder}")]
    Taken { block: String, holder: String },
    #[error("host {name} already holds block {held}; it cannot take {asked} as well")]
    AlreadyHolds {
        name: String,
        held: String,
        asked: String,
    },
    #[error("address {address} is outside host {host}'s block {block}")]
    Outside {
        address: IpAddr,
        host: String,
        block: String,
    },
    #[error("every block of {0} is taken")]
    Full(String),
    #[error(transparent)]
    Etcd(#[from] EtcdError),
}

/// A `/24` of the range, by its index (1 is `10.213.1.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block(u32);

impl Block {
    fn count() -> u32 {
        1 << (BLOCK_LEN - RANGE.1)
    }

    fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(RANGE.0) + (self.0 << (32 - BLOCK_LEN)))
    }

    /// The bridge's address on this host: the block's first address.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    /// Whether `ip` is one of this block's addresses.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) >> (32 - BLOCK_LEN) == u32::from(self.network()) >> (32 - BLOCK_LEN)
    }

    /// `10.213.N.0/24` as written in records and on the command line.
    pub fn parse(text: &str) -> Result<Block, HostError> {
        let bad = |why: String| HostError::Invalid(format!("block {text:?}: {why}"));
        let (ip, len) = text
            .split_once('/')
            .ok_or_else(|| bad("write it as a.b.c.d/len".into()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address".into()))?;
        if len != BLOCK_LEN.to_string() {
            return Err(bad(format!("blocks are /{BLOCK_LEN}")));
        }
        let offset = u32::from(ip).wrapping_sub(u32::from(RANGE.0));
        if u32::from(ip) < u32::from(RANGE.0) || offset >> (32 - RANGE.1) != 0 {
            return Err(bad(format!(
                "outside the mesh's range {}/{}",
                RANGE.0, RANGE.1
            )));
        }
        if offset & ((1 << (32 - BLOCK_LEN)) - 1) != 0 {
            return Err(bad(format!("not the start of a /{BLOCK_LEN}")));
        }
        let index = offset >> (32 - BLOCK_LEN);
        if index == 0 {
            return Err(bad(format!(
                "{}/{BLOCK_LEN} is the single-host default bridge's",
                RANGE.0
            )));
        }
        Ok(Block(index))
    }

    /// The block's key segment (`10.213.1.0-24`).
    fn key(self) -> String {
        format!("{}-{BLOCK_LEN}", self.network())
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{BLOCK_LEN}", self.network())
    }
}

/// Checks a host name: it becomes an etcd key segment and an interface-name suffix.
pub fn check_name(name: &str) -> Result<(), HostError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(HostError::Invalid(format!(
            "host name {name:?}: use 1 to 63 lowercase letters, digits and '-'"
        )))
    }
}

/// Joins host `name`: its record if it has one (a different `asked` block is refused),
/// otherwise a new record with `asked` or the lowest free block.
pub async fn join(
    etcd: &Etcd,
    name: &str,
    asked: Option<Block>,
    address: Option<IpAddr>,
) -> Result<HostRecord, HostError> {
    check_name(name)?;
    let host_key = etcd.keys.host(name);
    let blocks = etcd.keys.blocks();
    let mut kv = etcd.client.kv_client();
    for _ in 0..TRIES {
        let held = kv
            .get(host_key.as_str(), None)
            .await
            .map_err(EtcdError::from)?;
        if let Some(kv_held) = held.kvs().first() {
            let record: HostRecord = serde_json::from_slice(kv_held.value())
                .map_err(|e| EtcdError::Value(format!("{host_key}: {e}")))?;
            if let Some(asked) = asked.filter(|a| a.to_string() != record.block) {
                return Err(HostError::AlreadyHolds {
                    name: name.into(),
                    held: record.block,
                    asked: asked.to_string(),
                });
            }
            return Ok(record);
        }
        let taken = kv
            .get(blocks.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(EtcdError::from)?;
        let holder = |block: Block| {
            let key = format!("{blocks}{}", block.key());
            taken
                .kvs()
                .iter()
                .find(|kv| kv.key() == key.as_bytes())
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
        };
        let block = match asked {
            Some(block) => {
                if let Some(holder) = holder(block) {
                    return Err(HostError::Taken {
                        block: block.to_string(),
                        holder,
                    });
                }
                block
            }
            None => (1..Block::count())
                .map(Block)
                .find(|b| holder(*b).is_none())
                .ok_or_else(|| HostError::Full(format!("{}/{}", RANGE.0, RANGE.1)))?,
        };
        let record = HostRecord {
            name: name.into(),
            block: block.to_string(),
            address,
        };
        let value = serde_json::to_string(&record).map_err(|e| EtcdError::Value(e.to_string()))?;
        let block_key = format!("{blocks}{}", block.key());
        let claimed = kv
            .txn(
                Txn::new()
                    .when([
                        Compare::create_revision(host_key.as_str(), CompareOp::Equal, 0),
                        Compare::create_revision(block_key.as_str(), CompareOp::Equal, 0),
                    ])
                    .and_then([
                        TxnOp::put(host_key.as_str(), value, None),
                        TxnOp::put(block_key.as_str(), name, None),
                    ]),
            )
            .await
            .map_err(EtcdError::from)?;
        if claimed.succeeded() {
            tracing::info!(host = %name, block = %record.block, "host joined");
            return Ok(record);
        }
        // Another join took the block or named this host meanwhile: look again.
    }
    Err(HostError::Invalid(format!(
        "host {name}: other joins kept taking the block first; join again"
    )))
}

/// Host `name`'s record, if it joined.
pub async fn record(etcd: &Etcd, name: &str) -> Result<Option<HostRecord>, EtcdError> {
    let key = etcd.keys.host(name);
    let answer = etcd.client.kv_client().get(key.as_str(), None).await?;
    answer
        .kvs()
        .first()
        .map(|kv| {
            serde_json::from_slice(kv.value()).map_err(|e| EtcdError::Value(format!("{key}: {e}")))
        })
        .transpose()
}

/// Refuses a workload of host `name` whose address is not in that host's block; else the
/// host's record.
pub async fn check_address(
    etcd: &Etcd,
    name: &str,
    address: IpAddr,
) -> Result<HostRecord, HostError> {
    let record = record(etcd, name).await?.ok_or_else(|| {
        HostError::Invalid(format!(
            "host {name} has not joined the mesh (`weft host join {name}`)"
        ))
    })?;
    let block = Block::parse(&record.block)?;
    match address {
        IpAddr::V4(ip) if block.contains(ip) => Ok(record),
        _ => Err(HostError::Outside {
            address,
            host: name.into(),
            block: record.block,
        }),
    }
}

/// Every host's record.
pub async fn list(etcd: &Etcd) -> Result<Vec<HostRecord>, EtcdError> {
    let prefix = etcd.keys.hosts();
    let answer = etcd
        .client
        .kv_client()
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await?;
    Ok(answer
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice(kv.value()).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_24s_of_the_range_past_the_default_bridge() {
        let b = Block::parse("10.213.7.0/24").unwrap();
        assert_eq!(b.to_string(), "10.213.7.0/24");
        assert_eq!(b.gateway(), Ipv4Addr::new(10, 213, 7, 1));
        assert!(b.contains(Ipv4Addr::new(10, 213, 7, 200)));
        assert!(!b.contains(Ipv4Addr::new(10, 213, 8, 1)));
        assert_eq!(b.key(), "10.213.7.0-24");
        assert_eq!(Block(255).to_string(), "10.213.255.0/24");
        assert_eq!(Block::count(), 256);
        for bad in [
            "10.213.0.0/24",
            "10.213.7.1/24",
            "10.213.7.0/16",
            "10.214.0.0/24",
            "10.212.255.0/24",
            "192.168.1.0/24",
            "10.213.7.0",
            "x/24",
        ] {
            assert!(Block::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_names_are_key_and_interface_safe() {
        assert!(check_name("host-1").is_ok());
        for bad in ["", "-a", "Host", "a/b", "a.b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
