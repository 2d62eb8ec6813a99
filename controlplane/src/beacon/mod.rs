//! Beacons: the CM client modules on the servers announce their bindings to the CM, and CMs
//! announce themselves to each other (heartbeats), over UDP multicast (or unicast).
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the authenticated datagram format (HMAC-SHA256 with the switch profile's key) |
//! | [`replay`] | refusing replayed and stale datagrams (per-sender sequence numbers, timestamps) |
//! | [`tracker`] | the beacon-loss detector: which bindings are claimed, which senders fell silent |

pub mod replay;
pub mod tracker;
pub mod wire;
