//! pktgen: a DPDK traffic generator for the ACM dataplane, and the pieces of its benchmark.
//!
//! The library is sans-IO, like the dataplane's core: flow spaces ([`flows`]), frame
//! templates and in-place answers ([`packet`]), receive-side validation ([`validate`]),
//! latency histograms ([`histogram`]) and the run summary ([`summary`]). The `pktgen`
//! binary puts them on DPDK ports; `bench-report` turns a benchmark's runs into
//! `report.json`, `report.md` and SVG plots.
#![deny(unsafe_code)]

pub mod flows;
pub mod histogram;
pub mod packet;
pub mod summary;
pub mod svg;
pub mod validate;
