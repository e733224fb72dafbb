//! odin-status: a DAQ host's disks, interfaces and processes, served over
//! ZeroMQ the way odin-data processes speak.
//!
//! Data flows one way: [`sample`] reads the host into a [`snapshot::Snapshot`],
//! which becomes a [`tree::Node`], encoded once a cycle ([`cache`]); [`command`]
//! answers requests against that tree and [`server`] publishes it, over the
//! sockets in [`transport`], in the wire form of [`protocol`]; [`metrics`]
//! renders it for Prometheus.

pub mod cache;
pub mod cli;
pub mod command;
pub mod config;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod protocol;
pub mod sample;
pub mod server;
pub mod settings;
pub mod snapshot;
pub mod thresholds;
pub mod transport;
pub mod tree;
