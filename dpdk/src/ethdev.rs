//! Ethdev port ids and names: what the EAL's device lookups return and what a [`Port`](crate::Port)
//! handle is opened on (a module of its own so that the EAL and the ports both build on it).

use std::ffi::{c_char, CStr};
use std::fmt;

/// An ethdev port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// The device name of a port, if the port exists.
pub(crate) fn port_name(port: PortId) -> Option<String> {
    let mut buf = [0 as c_char; dpdk_sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, the size the function
    // requires; it writes a NUL-terminated name or fails.
    let ret = unsafe { dpdk_sys::rte_eth_dev_get_name_by_port(port.0, buf.as_mut_ptr()) };
    if ret != 0 {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated string within its bounds.
    Some(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}
