//! Zero-loss restart in user space on a modern Linux kernel: the framework of
//! "A Framework for Zero-Loss Internet Service Restart through
//! Application-Kernel Cooperation", with `restartd` in place of the kernel
//! module.
//!
//! * [`service`]: registration and reginfo, I/O channel keeping (descriptors
//!   passed to restartd with `SCM_RIGHTS` as they are opened).
//! * [`hread`]: data-holding read on the kernel's own receive buffer
//!   (`SO_PEEK_OFF`), or a hold buffer in a state region as fallback.
//! * [`region`]: named shared state regions in hugetlbfs that outlive a
//!   generation, with crash-atomic typed records.
//! * [`policy`]: fault classification and back-off.
//! * [`proto`], [`fdpass`]: the control protocol.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod fdpass;
pub mod hread;
pub mod policy;
pub mod proto;
pub mod region;
pub mod service;
pub mod sys;

pub use hread::{HoldingReader, HreadError, HreadMode};
pub use proto::{ExitCause, RegInfo};
pub use region::{Backing, LayoutSpec, Region, RegionOptions};
pub use service::Service;
