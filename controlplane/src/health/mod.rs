//! Health checks of real servers: L2 (ARP resolves), L3 (ICMP echo), L4 (TCP connect), L7
//! (HTTP request with accepted status codes), before an added binding receives traffic and
//! periodically after; failure reports of client modules take a server out at once.
//!
//! | module | what |
//! |---|---|
//! | [`fsm`] | the per-endpoint state machine (rise, fall, hard failures, report hold-down) |
//! | [`probe`] | the probes |
//! | [`runner`] | the checker at run time: probes every binding's real server, sets binding states in the CM |
//!
//! With checks on, run the CM with `add_state = "testing"`: new bindings wait in Testing until
//! their first check passes.

pub mod fsm;
pub mod probe;
pub mod runner;
