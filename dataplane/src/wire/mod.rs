//! Packet formats: zero-copy checked views and the fast-path parser.
//!
//! Two ways in:
//!
//! - [`parse`] — one pass over a received frame, returning a small `Copy` [`Parsed`]
//!   with the fields and offsets the load balancer needs. This is the fast path: no
//!   allocation, no panics, every length checked once before use. [`crate::nat`] rewrites
//!   frames at the offsets it returns.
//! - The views ([`ethernet::Frame`], [`arp::Packet`], [`ipv4::Packet`], [`tcp::Packet`],
//!   [`udp::Packet`], [`icmp::Packet`]) — smoltcp-style wrappers over any
//!   `T: AsRef<[u8]>` (setters when `T: AsMut<[u8]>`), with `new_checked` validating
//!   lengths so that no accessor panics afterwards, and field ranges as constants in
//!   each module's `field`. Used by builders, tests and slow paths.
//!
//! The `field` constants are the one place the packet layout is written: the parser and
//! the NAT rewrites read and write through them too, with the helpers of [`field`] on
//! fixed-size header arrays.
//!
//! Malformed input is a [`WireError`] (one variant per reason, with a counter index).
//! Well-formed input the fast path does not handle is not an error but is reported in
//! [`Parsed`]: other ethertypes, other IP protocols, TTL, and IPv4 fragments
//! ([`Ipv4Info::is_fragment`]; the dataplane drops fragments with a counter, since a NAT
//! load balancer cannot map non-first fragments without reassembly).
//!
//! ```
//! use dataplane::wire::{parse, L3, L4};
//! # let frame = [0u8; 14];
//! match parse(&frame) {
//!     Ok(p) => match p.l3 {
//!         L3::Ipv4(ip) if !ip.is_fragment => {
//!             if let L4::Tcp(tcp) = ip.l4 { let _ = (ip.dst, tcp.dst_port); }
//!         }
//!         L3::Arp(_arp) => {}
//!         _ => {}
//!     },
//!     Err(e) => { let _counter_slot = e.index(); }
//! }
//! ```

pub mod arp;
pub mod build;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod field;
pub mod icmp;
pub mod ipv4;
mod parse;
pub mod tcp;
pub mod udp;

pub use error::WireError;
pub use ethernet::MacAddr;
pub use parse::{parse, ArpInfo, IcmpInfo, Ipv4Info, Parsed, TcpInfo, UdpInfo, L3, L4};
pub use tcp::TcpFlags;

#[cfg(test)]
mod parse_tests;
