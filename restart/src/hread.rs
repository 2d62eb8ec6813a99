//! Data-holding read: `hread(fd, buf, rlen, dlen)` reads without consuming and
//! deletes explicitly once the data is processed, so a new generation re-reads
//! everything its predecessor had not finished with.
//!
//! Two modes:
//!
//! * [`HreadMode::PeekOff`]: the kernel's own receive buffer holds the bytes.
//!   Reads are `recv(MSG_PEEK)` with `SO_PEEK_OFF` advancing the peek offset;
//!   deletes are a consuming `recv` (`MSG_TRUNC` on TCP: no copy). A new
//!   generation sets `SO_PEEK_OFF` back to 0 (or to a known skip) and re-reads.
//!   Needs Linux >= 6.10 for TCP/IPv4, >= 6.12 for TCP/IPv6; UDP and Unix
//!   sockets have had it for years. Cost: held bytes occupy the socket's
//!   receive buffer, so the advertised window shrinks by what is held.
//! * [`HreadMode::Fallback`]: bytes are moved out of the kernel into a hold
//!   buffer in a shared state region (a ring per connection) under a
//!   write-ahead record (peek → copy to region → record intent → consume →
//!   commit), and served from there. On TCP the kernel's absolute consumed
//!   counter decides, on recovery, whether an interrupted consume happened, so
//!   the mode is exact; on UDP/Unix the pending bytes are compared with the
//!   queue head instead.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use thiserror::Error;

use crate::region::record::{Reader, Record, RecordError, Writer};
use crate::region::{AccessError, Region};
use crate::sys;

/// How held bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HreadMode {
    /// Kernel receive buffer + `SO_PEEK_OFF`.
    PeekOff,
    /// Hold buffer in a shared state region.
    Fallback,
}

impl std::fmt::Display for HreadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HreadMode::PeekOff => "peek-off (kernel receive buffer, SO_PEEK_OFF)",
            HreadMode::Fallback => "fallback (hold buffer in the shared state region)",
        })
    }
}

/// Errors of hread operations.
#[derive(Debug, Error)]
pub enum HreadError {
    /// A socket call failed (including `WouldBlock` when nothing is queued).
    #[error("hread: {0}")]
    Io(#[from] io::Error),
    /// Peek-off mode was asked for but this kernel/socket lacks `SO_PEEK_OFF`.
    #[error("SO_PEEK_OFF not supported on this socket ({0}); use the fallback mode")]
    PeekOffUnsupported(io::Error),
    /// Fallback mode needs a hold slab.
    #[error("fallback mode needs a hold slab in a state region")]
    NoSlab,
    /// The hold buffer is full: delete processed bytes first.
    #[error("hold buffer full ({0} bytes held)")]
    HoldFull(u64),
    /// More bytes deleted than read.
    #[error("delete of {asked} bytes but only {held} are held")]
    DeleteBeyondRead {
        /// Asked to delete.
        asked: u64,
        /// Bytes read and not deleted.
        held: u64,
    },
    /// The hold slab's region access failed (corrupt, wrong layout).
    #[error("hold slab: {0}")]
    Slab(#[from] AccessError),
    /// The hold slab's control record is inconsistent.
    #[error("hold slab control record inconsistent: {0}")]
    SlabState(String),
}

/// Probe whether the kernel supports `SO_PEEK_OFF` on this socket (and leave
/// it enabled at offset 0 if so).
pub fn detect_mode(fd: BorrowedFd<'_>) -> HreadMode {
    match sys::set_peek_off(fd, 0) {
        Ok(()) => HreadMode::PeekOff,
        Err(_) => HreadMode::Fallback,
    }
}

/// Socket flavour, which decides how deletes are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Tcp,
    Stream,
    Datagram,
}

fn flavour(fd: BorrowedFd<'_>) -> io::Result<Flavour> {
    let ty = sys::socket_type(fd)?;
    if ty == libc::SOCK_DGRAM || ty == libc::SOCK_SEQPACKET {
        return Ok(Flavour::Datagram);
    }
    let dom = sys::socket_domain(fd)?;
    Ok(if dom == libc::AF_INET || dom == libc::AF_INET6 { Flavour::Tcp } else { Flavour::Stream })
}

/// Control record of a fallback hold slab (ring of the raw entry's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldCtl {
    /// Absolute ring position of the first undeleted byte.
    pub head: u64,
    /// Absolute ring position after the last committed byte.
    pub tail: u64,
    /// `> tail` while a move out of the kernel is in flight.
    pub pending_end: u64,
    /// TCP: kernel consumed counter when the pending move began.
    pub kernel_mark: u64,
}

impl Record for HoldCtl {
    const SIZE: usize = 32;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.head);
        w.u64(self.tail);
        w.u64(self.pending_end);
        w.u64(self.kernel_mark);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        Ok(HoldCtl { head: r.u64()?, tail: r.u64()?, pending_end: r.u64()?, kernel_mark: r.u64()? })
    }
}

/// Where a fallback reader keeps its bytes: entry `index` of a `Records`
/// table of [`HoldCtl`] and the same entry of a `Raw` table (the ring).
#[derive(Debug, Clone)]
pub struct HoldSlab {
    /// The region.
    pub region: Region,
    /// `Records` table of [`HoldCtl`] (record size [`HoldCtl::SIZE`]).
    pub ctl_table: u32,
    /// `Raw` table of rings.
    pub data_table: u32,
    /// Entry in both tables.
    pub index: u32,
}

impl HoldSlab {
    fn cap(&self) -> Result<u64, HreadError> {
        Ok(self.region.raw_size(self.data_table)? as u64)
    }
    fn ctl(&self) -> Result<HoldCtl, HreadError> {
        Ok(self.region.read::<HoldCtl>(self.ctl_table, self.index)?.unwrap_or_default())
    }
    fn set_ctl(&self, c: &HoldCtl) -> Result<(), HreadError> {
        Ok(self.region.write(self.ctl_table, self.index, c)?)
    }
    fn ring_write(&self, pos: u64, data: &[u8]) -> Result<(), HreadError> {
        let cap = self.cap()?;
        let at = (pos % cap) as usize;
        let first = data.len().min(cap as usize - at);
        self.region.raw_write(self.data_table, self.index, at, &data[..first])?;
        if first < data.len() {
            self.region.raw_write(self.data_table, self.index, 0, &data[first..])?;
        }
        Ok(())
    }
    fn ring_read(&self, pos: u64, out: &mut [u8]) -> Result<(), HreadError> {
        let cap = self.cap()?;
        let at = (pos % cap) as usize;
        let first = out.len().min(cap as usize - at);
        self.region.raw_read(self.data_table, self.index, at, &mut out[..first])?;
        if first < out.len() {
            self.region.raw_read(self.data_table, self.index, 0, &mut out[first..])?;
        }
        Ok(())
    }
}

/// Per-socket data-holding reader. It does not own the socket: every call
/// takes the descriptor.
#[derive(Debug)]
pub struct HoldingReader {
    mode: HreadMode,
    flavour: Flavour,
    /// Bytes read (delivered) and not yet deleted.
    held: u64,
    /// Bytes deleted since this reader was opened (stream), or deleted
    /// datagram payload bytes.
    deleted: u64,
    slab: Option<HoldSlab>,
    ctl: HoldCtl,
}

const FRAME: u64 = 4;

impl HoldingReader {
    /// Start holding on a fresh socket (nothing read yet).
    pub fn open(fd: BorrowedFd<'_>, mode: HreadMode, slab: Option<HoldSlab>) -> Result<Self, HreadError> {
        let mut r = Self::new(fd, mode, slab)?;
        if let Some(s) = &r.slab {
            r.ctl = HoldCtl::default();
            s.set_ctl(&r.ctl)?;
        }
        Ok(r)
    }

    /// Take over a socket from a previous generation: everything not deleted
    /// is read again, except the first `skip` bytes (stream sockets; known to
    /// be processed from the caller's own state records).
    pub fn resume(fd: BorrowedFd<'_>, mode: HreadMode, slab: Option<HoldSlab>, skip: u64) -> Result<Self, HreadError> {
        let mut r = Self::new(fd, mode, slab)?;
        match mode {
            HreadMode::PeekOff => {
                let off = i32::try_from(skip).map_err(|_| HreadError::SlabState(format!("skip {skip} too large")))?;
                sys::set_peek_off(fd, off).map_err(HreadError::PeekOffUnsupported)?;
                r.held = skip;
            }
            HreadMode::Fallback => {
                let s = r.slab.clone().ok_or(HreadError::NoSlab)?;
                let mut c = s.ctl()?;
                if c.head > c.tail || c.pending_end < c.tail || c.pending_end - c.head > s.cap()? {
                    return Err(HreadError::SlabState(format!("{c:?}")));
                }
                if c.pending_end > c.tail {
                    let n = c.pending_end - c.tail;
                    let happened = match r.flavour {
                        Flavour::Tcp => sys::tcp_positions(fd)?.consumed >= c.kernel_mark + n,
                        _ => {
                            // Compare the queue head with the pending bytes.
                            let mut mine = vec![0u8; n as usize];
                            s.ring_read(c.tail, &mut mine)?;
                            let mut theirs = vec![0u8; n as usize];
                            let got = match sys::recv(fd, &mut theirs, libc::MSG_PEEK) {
                                Ok(g) => g,
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                                Err(e) => return Err(e.into()),
                            };
                            let cmp_from = if r.flavour == Flavour::Datagram { FRAME as usize } else { 0 };
                            !(got >= n as usize - cmp_from && theirs[..n as usize - cmp_from] == mine[cmp_from..])
                        }
                    };
                    if happened {
                        tracing::info!("hread fallback: completing an interrupted move of {n} bytes");
                        c.tail = c.pending_end;
                    } else {
                        c.pending_end = c.tail;
                    }
                    s.set_ctl(&c)?;
                }
                r.ctl = c;
                // Skipped bytes count as read and not deleted, as in peek-off
                // mode; bytes beyond what the ring holds were never moved.
                r.held = skip.min(c.tail - c.head);
            }
        }
        Ok(r)
    }

    fn new(fd: BorrowedFd<'_>, mode: HreadMode, slab: Option<HoldSlab>) -> Result<Self, HreadError> {
        let flavour = flavour(fd)?;
        match mode {
            HreadMode::PeekOff => sys::set_peek_off(fd, 0).map_err(HreadError::PeekOffUnsupported)?,
            HreadMode::Fallback => {
                if slab.is_none() {
                    return Err(HreadError::NoSlab);
                }
                // Make sure plain MSG_PEEK reads from the queue head.
                let _ = sys::set_peek_off(fd, -1);
            }
        }
        Ok(HoldingReader { mode, flavour, held: 0, deleted: 0, slab, ctl: HoldCtl::default() })
    }

    /// The active mode.
    pub fn mode(&self) -> HreadMode {
        self.mode
    }

    /// Bytes read and not yet deleted (stream sockets: the peek offset).
    pub fn held(&self) -> u64 {
        self.held
    }

    /// Bytes deleted through this reader.
    pub fn deleted(&self) -> u64 {
        self.deleted
    }

    /// The thesis's `hread(fd, buf, rlen, dlen)`: first delete `dlen` bytes of
    /// what was read before, then read up to `rlen` bytes (into `buf`) without
    /// consuming them. Returns the bytes read (0 at end of stream, or when
    /// `rlen == 0`).
    pub fn hread(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8], rlen: usize, dlen: usize) -> Result<usize, HreadError> {
        if dlen > 0 {
            self.delete(fd, dlen as u64)?;
        }
        if rlen == 0 {
            return Ok(0);
        }
        let n = rlen.min(buf.len());
        self.read(fd, &mut buf[..n])
    }

    /// Read without consuming. Stream sockets continue after what was read
    /// before; datagram sockets return (the rest of) one datagram per call.
    pub fn read(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, HreadError> {
        match self.mode {
            HreadMode::PeekOff => {
                let n = sys::recv_peek(fd, buf)?;
                self.held += n as u64;
                Ok(n)
            }
            HreadMode::Fallback => self.read_fallback(fd, buf),
        }
    }

    fn read_fallback(&mut self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, HreadError> {
        let s = self.slab.clone().ok_or(HreadError::NoSlab)?;
        let cap = s.cap()?;
        let pos = self.ctl.head + self.held;
        if pos == self.ctl.tail {
            // Nothing buffered beyond what was read: move more out of the kernel.
            let free = cap - (self.ctl.tail - self.ctl.head);
            let dgram = self.flavour == Flavour::Datagram;
            let want =
                if dgram { free.saturating_sub(FRAME) } else { free.min(buf.len().max(1) as u64 * 4).min(65536) };
            if want == 0 {
                return Err(HreadError::HoldFull(self.ctl.tail - self.ctl.head));
            }
            let mut tmp = vec![0u8; want as usize + if dgram { FRAME as usize } else { 0 }];
            let (n, frame) = if dgram {
                let (hdr, body) = tmp.split_at_mut(FRAME as usize);
                let n = sys::recv(fd, body, libc::MSG_PEEK | libc::MSG_TRUNC)?;
                if n > body.len() {
                    return Err(HreadError::HoldFull(self.ctl.tail - self.ctl.head));
                }
                hdr.copy_from_slice(&(n as u32).to_le_bytes());
                (n, n + FRAME as usize)
            } else {
                let n = sys::recv(fd, &mut tmp, libc::MSG_PEEK)?;
                if n == 0 {
                    return Ok(0);
                }
                (n, n)
            };
            // Write-ahead: bytes into the ring, then the intent, then consume.
            s.ring_write(self.ctl.tail, &tmp[..frame])?;
            let mark = if self.flavour == Flavour::Tcp { sys::tcp_positions(fd)?.consumed } else { 0 };
            self.ctl.pending_end = self.ctl.tail + frame as u64;
            self.ctl.kernel_mark = mark;
            s.set_ctl(&self.ctl)?;
            self.consume_kernel(fd, n)?;
            self.ctl.tail = self.ctl.pending_end;
            s.set_ctl(&self.ctl)?;
        }
        if self.flavour == Flavour::Datagram {
            let mut hdr = [0u8; FRAME as usize];
            s.ring_read(pos, &mut hdr)?;
            let len = u32::from_le_bytes(hdr) as usize;
            let n = len.min(buf.len());
            s.ring_read(pos + FRAME, &mut buf[..n])?;
            self.held += FRAME + len as u64;
            return Ok(n);
        }
        let n = (self.ctl.tail - pos).min(buf.len() as u64) as usize;
        s.ring_read(pos, &mut buf[..n])?;
        self.held += n as u64;
        Ok(n)
    }

    fn consume_kernel(&self, fd: BorrowedFd<'_>, n: usize) -> Result<(), HreadError> {
        match self.flavour {
            Flavour::Tcp => {
                let mut left = n;
                while left > 0 {
                    let d = sys::tcp_discard(fd, left)?;
                    if d == 0 {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                    }
                    left -= d;
                }
            }
            Flavour::Stream => {
                let mut scratch = [0u8; 4096];
                let mut left = n;
                while left > 0 {
                    let k = left.min(scratch.len());
                    let d = sys::recv(fd, &mut scratch[..k], 0)?;
                    if d == 0 {
                        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                    }
                    left -= d;
                }
            }
            Flavour::Datagram => {
                let mut scratch = [0u8; 1];
                sys::recv(fd, &mut scratch, libc::MSG_TRUNC)?;
            }
        }
        Ok(())
    }

    /// Delete `n` bytes that were read (processed data). On datagram sockets
    /// whole datagrams are deleted while their payload fits in `n`; the
    /// return value is the payload bytes deleted.
    pub fn delete(&mut self, fd: BorrowedFd<'_>, n: u64) -> Result<u64, HreadError> {
        match (self.mode, self.flavour) {
            (_, Flavour::Datagram) => self.delete_datagrams(fd, n),
            (HreadMode::PeekOff, _) => {
                if n > self.held {
                    return Err(HreadError::DeleteBeyondRead { asked: n, held: self.held });
                }
                let f = HoldingReader { slab: None, ..*self };
                f.consume_kernel(fd, n as usize)?;
                self.held -= n;
                self.deleted += n;
                Ok(n)
            }
            (HreadMode::Fallback, _) => {
                if n > self.held {
                    return Err(HreadError::DeleteBeyondRead { asked: n, held: self.held });
                }
                let s = self.slab.clone().ok_or(HreadError::NoSlab)?;
                self.ctl.head += n;
                s.set_ctl(&self.ctl)?;
                self.held -= n;
                self.deleted += n;
                Ok(n)
            }
        }
    }

    fn delete_datagrams(&mut self, fd: BorrowedFd<'_>, n: u64) -> Result<u64, HreadError> {
        let mut done = 0u64;
        match self.mode {
            HreadMode::PeekOff => {
                let mut scratch = [0u8; 1];
                while done < n && self.held > 0 {
                    let len = sys::recv(fd, &mut scratch, libc::MSG_TRUNC)? as u64;
                    if done + len > n && done > 0 {
                        return Err(HreadError::SlabState("datagram delete split a datagram".into()));
                    }
                    done += len;
                    self.held = self.held.saturating_sub(len);
                }
            }
            HreadMode::Fallback => {
                let s = self.slab.clone().ok_or(HreadError::NoSlab)?;
                while done < n && self.held > 0 {
                    let mut hdr = [0u8; FRAME as usize];
                    s.ring_read(self.ctl.head, &mut hdr)?;
                    let len = u64::from(u32::from_le_bytes(hdr));
                    self.ctl.head += FRAME + len;
                    self.held -= FRAME + len;
                    done += len;
                }
                s.set_ctl(&self.ctl)?;
            }
        }
        self.deleted += done;
        Ok(done)
    }
}

/// Convenience for callers holding an `AsFd`.
pub fn hread(
    r: &mut HoldingReader,
    fd: &impl AsFd,
    buf: &mut [u8],
    rlen: usize,
    dlen: usize,
) -> Result<usize, HreadError> {
    r.hread(fd.as_fd(), buf, rlen, dlen)
}
