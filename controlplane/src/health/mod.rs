//! Health checks of real servers: L2 (ARP), L3 (ICMP echo), L4 (TCP connect), L7 (HTTP).
//!
//! | module | what |
//! |---|---|
//! | [`fsm`] | the per-endpoint state machine (rise, fall, hard failures, report hold-down) |

pub mod fsm;
