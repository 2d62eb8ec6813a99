//! Health checks of real servers: L2 (ARP resolves), L3 (ICMP echo), L4 (TCP connect), L7
//! (HTTP request with accepted status codes), before an added binding receives traffic and
//! periodically after; failure reports of client modules take a server out at once.
//!
//! | module | what |
//! |---|---|
//! | [`fsm`] | the per-endpoint state machine (rise, fall, hard failures, report hold-down) |
//! | [`probe`] | the probes |
//! | [`target`] | which bindings a failure report names; the checker's state across restarts |
//!
//! The checker at run time (it probes every binding's real server and hands the verdicts to the
//! CM's core) is [`crate::services::health`].
//!
//! With checks on, run the CM with `add_state = "testing"`: new bindings wait in Testing until
//! their first check passes.

pub mod fsm;
pub mod probe;
pub mod target;
