//! `weft audit`: does this team need a mesh at all? Answered from what the mesh observed,
//! following `shared/AUDIT-FRAMEWORK.md`.
//!
//! - [`facts`]: what the audit keeps of each proxy's counters, and the Prometheus expression
//!   that counts the same;
//! - [`ledger`]: the rolling summary of those facts, in five-minute buckets over a week,
//!   kept in the state directory;
//! - [`report`]: the report over a window (inventory, the capabilities the traffic used,
//!   their alternatives, the verdict, the adoption path);
//! - [`inventory`], [`routing`], [`adoption`]: the report's inventory, routing and
//!   adoption-path sections;
//! - [`verdict`]: the framework's rules;
//! - [`api`]: `GET /audit?window=24h` on the admin endpoint.

pub mod adoption;
pub mod api;
pub mod facts;
pub mod inventory;
pub mod ledger;
pub mod report;
pub mod routing;
pub mod verdict;
