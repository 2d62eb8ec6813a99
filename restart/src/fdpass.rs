//! Messages with descriptors attached (`SCM_RIGHTS`) over Unix
//! `SOCK_SEQPACKET` sockets: one JSON message per packet, fds ride along.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// Most descriptors sent in one message.
pub const MAX_FDS: usize = 64;
/// Largest message.
pub const MAX_MSG: usize = 256 * 1024;

/// Send `msg` with `fds` attached. Blocks if the peer's queue is full.
pub fn send(sock: BorrowedFd<'_>, msg: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many fds in one message"));
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    loop {
        match rustix::net::sendmsg(sock, &[IoSlice::new(msg)], &mut cmsg, SendFlags::NOSIGNAL) {
            Ok(n) if n == msg.len() => return Ok(()),
            Ok(n) => return Err(io::Error::other(format!("short seqpacket send {n}/{}", msg.len()))),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receive one message into `buf` with the fds attached (close-on-exec).
/// `Ok(None)` at end of stream. With `nonblock`, `WouldBlock` when empty.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut Vec<u8>, nonblock: bool) -> io::Result<Option<Vec<OwnedFd>>> {
    buf.resize(MAX_MSG, 0);
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if nonblock {
        flags |= RecvFlags::DONTWAIT;
    }
    let r = loop {
        match rustix::net::recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut cmsg, flags) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other,
        }
    };
    let r = r?;
    let mut fds = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    buf.truncate(r.bytes);
    if r.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    Ok(Some(fds))
}

/// A new close-on-exec `SOCK_SEQPACKET` Unix socket connected to `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
    Ok(fd)
}

/// A listening, non-blocking, close-on-exec `SOCK_SEQPACKET` socket at
/// `path` (a stale socket file is replaced).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::net::listen(&fd, 128)?;
    Ok(fd)
}

/// Accept one connection (non-blocking, close-on-exec).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)?)
}

/// Peer pid of a connected Unix socket (`SO_PEERCRED`).
pub fn peer_pid(sock: impl AsFd) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(sock)?.pid.as_raw_nonzero().get() as u32)
}
