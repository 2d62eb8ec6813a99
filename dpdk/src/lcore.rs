//! Running closures on worker lcores.

use std::any::Any;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::eal::Eal;
use crate::errno::Errno;

/// The return code of an lcore whose closure panicked (the panic is caught
/// at the FFI boundary and logged).
pub const LCORE_PANICKED: i32 = i32::MIN;

/// Why [`Eal::launch`] did not start the closure.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The lcore is the main lcore, not enabled with `-l`, or out of range.
    #[error("lcore {lcore} is not a worker lcore of this process (workers: {workers:?})")]
    NotAWorker {
        /// The lcore asked for.
        lcore: u32,
        /// The worker lcores that exist.
        workers: Vec<u32>,
    },
    /// The lcore is still running an earlier closure; [`Eal::wait`] for it.
    #[error("lcore {lcore} is busy running an earlier closure")]
    Busy {
        /// The lcore asked for.
        lcore: u32,
    },
    /// `rte_eal_remote_launch` failed otherwise.
    #[error("rte_eal_remote_launch on lcore {lcore} failed: {errno}")]
    Failed {
        /// The lcore asked for.
        lcore: u32,
        /// The error.
        errno: Errno,
    },
}

/// The lcore the calling thread runs on, or `None` for a thread that is not
/// an EAL lcore (or before [`Eal::init`]).
pub fn current_lcore() -> Option<u32> {
    // SAFETY: reads the calling thread's per-lcore id variable.
    let id = unsafe { dpdk_sys::dpdk_shim_lcore_id() };
    (id != dpdk_sys::LCORE_ID_ANY).then_some(id)
}

/// Sets the scheduling priority (nice value, -20..=19) of the calling thread only.
///
/// A poll-mode worker never sleeps; on a machine where its core is not isolated (`isolcpus`),
/// a negative nice value keeps other runnable threads from taking the core for a scheduler
/// slice at a time. Lowering below 0 needs CAP_SYS_NICE; the error is returned, not fatal.
pub fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority with PRIO_PROCESS and a thread id changes only that thread's nice
    // value (Linux semantics); no memory is passed.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Entry point on the worker lcore: runs the boxed closure, catching any
/// panic so it never unwinds into DPDK's C code.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Box<Job> leaked by Eal::launch for exactly this one
    // call; ownership comes back here.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    match catch_unwind(AssertUnwindSafe(move || (*job)())) {
        Ok(rc) => rc,
        Err(payload) => {
            tracing::error!(lcore = current_lcore(), "closure on lcore panicked: {}", panic_message(payload.as_ref()));
            LCORE_PANICKED
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

impl Eal {
    /// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`) and returns
    /// at once; [`Eal::wait`] collects its return value.
    ///
    /// A panic in `f` is caught on the lcore (it never crosses into C), logged,
    /// and turned into the return value [`LCORE_PANICKED`]; the process and
    /// the lcore survive.
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<(), LaunchError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let workers = self.worker_lcores();
        if !workers.contains(&lcore) {
            return Err(LaunchError::NotAWorker { lcore, workers });
        }
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        // SAFETY: trampoline has the lcore_function_t signature and takes back
        // ownership of arg; lcore is an enabled worker; self proves the EAL is
        // initialised and, being !Send, that we are on the main lcore.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if ret != 0 {
            // SAFETY: the launch failed, so the trampoline will never run and
            // arg is still exclusively ours.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            let errno = Errno::from_ret(ret);
            return Err(if errno.0 == libc::EBUSY {
                LaunchError::Busy { lcore }
            } else {
                LaunchError::Failed { lcore, errno }
            });
        }
        Ok(())
    }

    /// Waits for the closure on `lcore` to finish and returns its return
    /// value ([`LCORE_PANICKED`] if it panicked). Returns 0 at once if the
    /// lcore is idle or not a worker.
    pub fn wait(&self, lcore: u32) -> i32 {
        if lcore >= dpdk_sys::RTE_MAX_LCORE || lcore == self.main_lcore() {
            return 0;
        }
        // SAFETY: lcore is in range; self (!Send) proves we are on the main
        // lcore, where rte_eal_wait_lcore must be called.
        unsafe { dpdk_sys::rte_eal_wait_lcore(lcore) }
    }

    /// Waits for every worker lcore; returns `(lcore, return value)` for each.
    pub fn wait_all(&self) -> Vec<(u32, i32)> {
        self.worker_lcores().into_iter().map(|l| (l, self.wait(l))).collect()
    }

    /// Whether a closure is running on `lcore`.
    pub fn is_running(&self, lcore: u32) -> bool {
        if lcore >= dpdk_sys::RTE_MAX_LCORE {
            return false;
        }
        // SAFETY: lcore is in range of the lcore table.
        unsafe { dpdk_sys::rte_eal_get_lcore_state(lcore) == dpdk_sys::RUNNING }
    }
}
