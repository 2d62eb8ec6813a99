//! Switch drivers: how the CM talks to each kind of switch.
//!
//! * [`dataplane::DataplaneDriver`] — the appliance's own dataplane, through its switch API
//!   (Unix socket): every primitive acknowledged with timestamps.
//! * [`serveriron::ServerIronDriver`] — any device that speaks the ServerIron CLI over telnet
//!   (another appliance of ours included), as COMICS drove Foundry switches.
//! * [`crate::cm::fake::FakeSwitch`] — in memory, for tests and benchmarks.

pub mod dataplane;
pub mod serveriron;
