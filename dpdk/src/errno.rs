//! DPDK error numbers.

use std::ffi::CStr;
use std::fmt;

/// An error number returned by DPDK (a negative return value or `rte_errno`),
/// displayed with `rte_strerror`'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The current thread's `rte_errno`.
    pub fn last() -> Errno {
        // SAFETY: reads the calling thread's per-lcore rte_errno variable.
        Errno(unsafe { dpdk_sys::dpdk_shim_errno() })
    }

    /// Builds an `Errno` from a negative DPDK return code (`-EINVAL` style);
    /// a non-negative code yields the current `rte_errno` instead, for the
    /// functions that return -1 and set `rte_errno`.
    pub fn from_ret(ret: i32) -> Errno {
        if ret < -1 {
            Errno(-ret)
        } else {
            Errno::last()
        }
    }

    /// `ENOTSUP`: the driver does not implement the operation.
    pub fn is_not_supported(self) -> bool {
        self.0 == libc::ENOTSUP || self.0 == libc::EOPNOTSUPP
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a NUL-terminated string
        // that is static or thread-local and stays valid until the next call
        // on this thread; it is copied out immediately.
        let text = unsafe {
            let p = dpdk_sys::rte_strerror(self.0);
            if p.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        write!(f, "{text} (errno {})", self.0)
    }
}
