//! Beacons: the CM client modules on the servers announce their bindings to the CM, and CMs
//! announce themselves to each other (heartbeats), over UDP multicast (or unicast).
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the authenticated datagram format (HMAC-SHA256 with the switch profile's key) |
//! | [`replay`] | refusing replayed and stale datagrams (per-sender sequence numbers, timestamps) |
//! | [`tracker`] | the beacon-loss detector: which bindings are claimed, which senders fell silent |
//! | [`crate::services::beacon`] | the CM side at run time: the socket, counters, and what beacons do to the [`crate::cm::Cm`] |

use std::net::Ipv4Addr;

pub mod replay;
pub mod tracker;
pub mod wire;

/// Default multicast group of beacons and CM heartbeats (administratively scoped).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 77);
/// Default UDP port of beacons and CM heartbeats.
pub const DEFAULT_PORT: u16 = 8790;
/// Default switch profile name.
pub const DEFAULT_PROFILE: &str = "default";
