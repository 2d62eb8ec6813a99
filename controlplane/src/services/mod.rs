//! The Connection Manager's services at run time: the sockets and tasks that feed the CM core
//! ([`crate::cm`]) what they see and do what it asks.
//!
//! | module | what |
//! |---|---|
//! | [`beacon`] | the beacon socket: authenticates datagrams of the CM client modules and of other CMs, hands them to the core, sends this CM's heartbeats |
//! | [`health`] | the health prober: probes every binding's real server and hands the verdicts to the core |
//!
//! They sit above [`crate::cm`]; the sans-IO parts they use ([`crate::beacon`], [`crate::health`],
//! [`crate::election`], [`crate::time`]) sit below it, so no module of this crate imports one that
//! imports it back.

pub mod beacon;
pub mod health;
