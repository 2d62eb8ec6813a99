//! The few libc calls the safe crates do not cover: `SO_PEEK_OFF`, discarding
//! receives, TCP sequence counters, `mmap` of a region file and `statfs`.
//!
//! Every function takes a [`BorrowedFd`] so the descriptor is valid for the
//! duration of the call; every `unsafe` block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, off)`. `off = -1` disables peeking
/// with an offset; `off >= 0` enables it and sets the offset.
pub fn set_peek_off(fd: BorrowedFd<'_>, off: i32) -> io::Result<()> {
    let v: libc::c_int = off;
    // SAFETY: `fd` is a live descriptor for the call; we pass a pointer to a
    // c_int on our stack with its exact size, which the kernel only reads.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(r).map(|_| ())
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF)`.
pub fn get_peek_off(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is live; `v` and `len` are valid, writable and correctly sized.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEEK_OFF,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    cvt(r).map(|_| v)
}

/// `getsockopt(fd, SOL_SOCKET, SO_TYPE)`.
pub fn socket_type(fd: BorrowedFd<'_>) -> io::Result<i32> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)
}

/// `getsockopt(fd, SOL_SOCKET, SO_DOMAIN)`.
pub fn socket_domain(fd: BorrowedFd<'_>) -> io::Result<i32> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)
}

fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is live; `v` and `len` are valid, writable and correctly sized.
    let r = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&mut v as *mut libc::c_int).cast(), &mut len) };
    cvt(r).map(|_| v)
}

/// `recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT)`: with `SO_PEEK_OFF` enabled the
/// kernel reads from the peek offset and advances it.
pub fn recv_peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the call.
    let r =
        unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    cvt_size(r)
}

/// A consuming `recv(fd, buf, len, flags | MSG_DONTWAIT)`.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the call.
    let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags | libc::MSG_DONTWAIT) };
    cvt_size(r)
}

/// `recv(fd, NULL, n, MSG_TRUNC | MSG_DONTWAIT)` on a TCP socket: the kernel
/// discards up to `n` bytes of the receive queue without copying them.
pub fn tcp_discard(fd: BorrowedFd<'_>, n: usize) -> io::Result<usize> {
    // SAFETY: with MSG_TRUNC on a TCP socket the kernel never writes to the
    // buffer (tcp_recvmsg skips the copy), so a null pointer is accepted.
    let r = unsafe { libc::recv(fd.as_raw_fd(), std::ptr::null_mut(), n, libc::MSG_TRUNC | libc::MSG_DONTWAIT) };
    cvt_size(r)
}

/// `ioctl(fd, SIOCINQ)` / `ioctl(fd, SIOCOUTQ)`.
fn ioctl_int(fd: BorrowedFd<'_>, req: libc::Ioctl) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: both requests write one c_int through the pointer, which is valid.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, &mut v as *mut libc::c_int) };
    cvt(r).map(|_| v as u32)
}

/// The two counters of `struct tcp_info` we need.
#[derive(Debug, Clone, Copy)]
struct TcpInfoCounters {
    bytes_acked: u64,
    bytes_received: u64,
}

fn tcp_info(fd: BorrowedFd<'_>) -> io::Result<TcpInfoCounters> {
    let mut info: libc::tcp_info = tcp_info_zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable tcp_info and `len` its size; the kernel
    // writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    cvt(r)?;
    if (len as usize) < std::mem::size_of::<libc::tcp_info>() {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "kernel tcp_info too short for byte counters"));
    }
    Ok(TcpInfoCounters { bytes_acked: info.tcpi_bytes_acked, bytes_received: info.tcpi_bytes_received })
}

fn tcp_info_zeroed() -> libc::tcp_info {
    // SAFETY: tcp_info is a plain C struct of integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Absolute byte positions of a TCP connection, counted by the kernel from the
/// start of the connection: what the application has written into the socket
/// and what it has consumed from it. Exact at any instant, so a new generation
/// can tell how far its predecessor got regardless of where it crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPositions {
    /// Bytes ever written by the application (`write_seq - isn - 1`).
    pub written: u64,
    /// Bytes ever consumed by the application (`copied_seq - irs - 1`).
    pub consumed: u64,
}

/// Read [`TcpPositions`]: `written = tcpi_bytes_acked + SIOCOUTQ`,
/// `consumed = tcpi_bytes_received - SIOCINQ`, retried until the counters are
/// stable across the ioctls (an ACK or segment arriving in between).
pub fn tcp_positions(fd: BorrowedFd<'_>) -> io::Result<TcpPositions> {
    for _ in 0..1000 {
        let a = tcp_info(fd)?;
        let outq = ioctl_int(fd, libc::TIOCOUTQ)?;
        let inq = ioctl_int(fd, libc::FIONREAD)?;
        let b = tcp_info(fd)?;
        if a.bytes_acked == b.bytes_acked && a.bytes_received == b.bytes_received {
            return Ok(TcpPositions {
                written: a.bytes_acked + u64::from(outq),
                consumed: a.bytes_received.saturating_sub(u64::from(inq)),
            });
        }
    }
    Err(io::Error::new(io::ErrorKind::WouldBlock, "tcp counters never stable"))
}

/// `sendfile(out, in, &offset, count)`.
pub fn sendfile(out: BorrowedFd<'_>, input: BorrowedFd<'_>, offset: &mut i64, count: usize) -> io::Result<usize> {
    // SAFETY: both fds are live; `offset` is a valid writable off_t.
    let r = unsafe { libc::sendfile(out.as_raw_fd(), input.as_raw_fd(), offset as *mut i64, count) };
    cvt_size(r)
}

/// `statfs(path).f_type == HUGETLBFS_MAGIC`.
pub fn is_hugetlbfs(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statfs is a plain C struct of integers; all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statfs.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
    r == 0 && st.f_type as i64 == HUGETLBFS_MAGIC
}

/// A shared, writable mapping of a whole file. Bytes are only ever copied in
/// and out through [`Mapping::read`] and [`Mapping::write`] (no reference into
/// the mapping escapes), so another process writing the file cannot violate
/// Rust's aliasing rules in ours.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh shared mapping chosen by the kernel (no fixed
        // address), so no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|e| e <= self.len),
            "mapping access out of bounds: {off}+{n} > {}",
            self.len
        );
    }

    /// Copy `out.len()` bytes at `off` out of the mapping. Panics if out of
    /// bounds (callers check against the validated layout first).
    pub fn read(&self, off: usize, out: &mut [u8]) {
        self.check(off, out.len());
        // SAFETY: bounds checked above; the mapping is live while `self` is;
        // `out` is a distinct Rust buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), out.as_mut_ptr(), out.len()) }
    }

    /// Copy `data` into the mapping at `off`. Panics if out of bounds.
    pub fn write(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        // SAFETY: bounds checked above; the mapping is writable and live;
        // `data` is a distinct Rust buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len()) }
    }
}

// SAFETY: a `Mapping` owns a process-wide shared mapping, not tied to the
// thread that created it; moving it to another thread and unmapping it there
// is sound. It is not `Sync`: concurrent copies must be serialized by the
// owner (`Region` does, with a lock).
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and no reference
        // into the mapping outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Put the fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP)
/// back to their default action, so a fault — or `kill -SEGV` — ends the
/// process and restartd sees it (the thesis's guideline: no handlers for
/// abnormal-termination signals). Rust's runtime installs a SIGSEGV/SIGBUS
/// handler for stack-overflow reports that swallows an externally sent
/// signal once.
pub fn default_fault_signals() {
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGTRAP] {
        // SAFETY: installing SIG_DFL for a signal is always sound; no handler
        // code of ours runs.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}
