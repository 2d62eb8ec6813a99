//! The control plane: the Connection Manager (CM) of Chen & Brewer's Active Connection
//! Management, on the appliance's management core.
//!
//! | module | what |
//! |---|---|
//! | [`cm`] | the CM core: binding cache (sans-IO), switch drivers and their threads, the one code path of every primitive, the periodic sync, `set_state` / `set_active` for health and election |
//! | [`latency`] | configuration-latency histograms (receipt → switch ack), per primitive and switch |
//! | [`config`] | the controlplane's TOML config file (users, listen addresses, switch profiles) |
//! | [`api`] | the local Unix-socket API (`acmctl`, tests) |
//! | [`telnet`] | the telnet server of the ServerIron CLI, and the CLI backend over the CM |
//! | [`telnet_listen`] | extra telnet listeners: port 23 on the appliance's port addresses (exception path) |
//! | [`zlr`] | zero-loss restart under `restartd`: kept channels, the cache and running-config in a state region, telnet session continuity |
//! | [`fuzzing`] | entry points of the fuzz targets: beacon datagrams, a ServerIron device's output |
//! | [`drivers`] | switch drivers: the local dataplane (switch API) and ServerIron-CLI devices over telnet |
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod beacon;
pub mod client;
pub mod cm;
pub mod config;
pub mod drivers;
pub mod election;
pub mod fuzzing;
pub mod health;
pub mod latency;
pub mod rolling;
pub mod services;
pub mod sim;
pub mod telnet;
pub mod telnet_listen;
pub mod time;
pub mod zlr;
