//! Telnet session continuity across a control plane crash.
//!
//! Every input a session processes goes through four steps, in this order:
//!
//! 1. **read, holding**: the bytes are read with hread (`SO_PEEK_OFF` peek, or the region's
//!    hold buffer where the kernel lacks it): they stay in the socket until step 3;
//! 2. **process**: the sans-IO [`cli::Connection`] turns them into output and a new state;
//! 3. **record**: one crash-atomic record write ([`SessionRec`]) commits the connection's
//!    image after the input, the input position (`in_done`), the output position after the
//!    output (`out_total`) and the output itself (`pending`); then the input is deleted;
//! 4. **send** the output.
//!
//! The next generation compares the record with the kernel's own byte counters of the TCP
//! connection (bytes the application ever wrote, bytes it ever consumed), which are exact
//! whatever instruction the crash hit:
//!
//! * crash before 3: the record is the previous one; the input is still held, so it is read
//!   and processed again — nothing of its output had been sent (4 comes after 3);
//! * crash between 3 and its delete: the input is processed (`in_done`), so the new generation
//!   deletes what is left of it instead of processing it again;
//! * crash during 4: `out_total − written` bytes of `pending` never left: the new generation
//!   sends exactly those, then continues.
//!
//! So a half-typed line is neither lost nor echoed twice, and a command typed just before the
//! crash runs (at most its side effects run twice if the crash hits between 2 and 3; the CM's
//! primitives filter a repeated one).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Instant;

use cli::image::ConnectionImage;
use cli::{Connection, ServerSettings};
use restart::hread::{HoldCtl, HoldSlab, HoldingReader, HreadError, HreadMode};
use thiserror::Error;

use super::layout::{SessionRec, IMAGE_CAP, T_HOLD_CTL, T_HOLD_DATA, T_SESSION};
use super::Zlr;

/// Why a session could not be recorded or resumed.
#[derive(Debug, Error)]
pub enum SessionError {
    /// A socket call failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// hread failed.
    #[error("{0}")]
    Hread(#[from] HreadError),
    /// The region refused a record.
    #[error("session record: {0}")]
    Region(#[from] restart::region::AccessError),
    /// No free session slot in the region.
    #[error("no free session slot")]
    NoSlot,
    /// The record and the connection disagree.
    #[error("session {id}: {why}")]
    Inconsistent {
        /// Channel id.
        id: u64,
        /// What.
        why: String,
    },
    /// The connection image does not restore.
    #[error("session {id}: {why}")]
    Image {
        /// Channel id.
        id: u64,
        /// What.
        why: String,
    },
}

/// Session slots of the region not in use.
static FREE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn free_slots() -> std::sync::MutexGuard<'static, Vec<u32>> {
    FREE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A recorded telnet session: its slot, record and holding reader. Dropping it (the session
/// ended, cleanly or by an error) deletes what is held, releases the kept channel and frees the
/// slot, so the peer sees a FIN; a crash drops nothing, so the next generation finds it all.
pub struct Recorded {
    z: &'static Zlr,
    slot: u32,
    rec: SessionRec,
    reader: HoldingReader,
    fd: OwnedFd,
}

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorded").field("slot", &self.slot).field("id", &self.rec.id).finish()
    }
}

fn name(id: u64) -> String {
    format!("telnet:{id}")
}

/// JSON of an image, cut to fit [`IMAGE_CAP`]: the pager backlog first, then the oldest
/// history lines.
pub fn encode_image(img: &ConnectionImage) -> Vec<u8> {
    let mut img = img.clone();
    loop {
        let bytes = serde_json::to_vec(&img).unwrap_or_default();
        if bytes.len() <= IMAGE_CAP {
            return bytes;
        }
        if !img.pager.is_empty() {
            tracing::warn!("session image too large: dropping {} paged lines from the record", img.pager.len());
            img.pager.clear();
        } else if !img.session.history.is_empty() {
            img.session.history.remove(0);
            img.editor.hist = None;
        } else {
            return bytes; // cannot happen: a line is at most 512 bytes
        }
    }
}

fn slab(z: &Zlr, slot: u32) -> HoldSlab {
    HoldSlab { region: z.region().clone(), ctl_table: T_HOLD_CTL, data_table: T_HOLD_DATA, index: slot }
}

impl Recorded {
    /// Marks every slot free except `used` (recovered sessions).
    pub fn init_slots(z: &Zlr, used: &[u32]) {
        let n = z.region().count(T_SESSION).unwrap_or(0);
        *free_slots() = (0..n).rev().filter(|s| !used.contains(s)).collect();
    }

    /// Returns a slot to the free list (a stale record was cleared).
    pub fn free_slot(slot: u32) {
        free_slots().push(slot);
    }

    /// Records a new session (after the hello was produced, before it is sent), has restartd
    /// keep the socket, and starts holding its input.
    pub fn open(
        z: &'static Zlr,
        sock: BorrowedFd<'_>,
        number: u64,
        img: &ConnectionImage,
        hello: &[u8],
    ) -> Result<Recorded, SessionError> {
        let slot = free_slots().pop().ok_or(SessionError::NoSlot)?;
        let res = (|| {
            let pos = restart::sys::tcp_positions(sock)?;
            let mode = restart::hread::detect_mode(sock);
            let id = z.next_id();
            let rec = SessionRec {
                id,
                number,
                base_written: pos.written,
                base_consumed: pos.consumed,
                fallback: mode == HreadMode::Fallback,
                in_done: 0,
                out_total: hello.len() as u64,
                image: encode_image(img),
                pending: hello.to_vec(),
            };
            // Write-ahead: the record exists before restartd keeps the socket.
            z.region().write(T_SESSION, slot, &rec)?;
            let fd = sock.try_clone_to_owned()?;
            z.keep(&name(id), sock);
            let s = (mode == HreadMode::Fallback).then(|| slab(z, slot));
            let reader = HoldingReader::open(sock, mode, s)?;
            Ok(Recorded { z, slot, rec, reader, fd })
        })();
        if res.is_err() {
            free_slots().push(slot);
        }
        res
    }

    /// The channel id.
    pub fn id(&self) -> u64 {
        self.rec.id
    }

    /// The session number.
    pub fn number(&self) -> u64 {
        self.rec.number
    }

    /// Step 1: reads input without consuming it (non-blocking: `WouldBlock` when none).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(self.fd.as_fd(), buf).map_err(|e| match e {
            HreadError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })
    }

    /// Step 3: commits `consumed` processed input bytes, the image after them and their
    /// output, then deletes the input from the socket.
    pub fn commit(&mut self, consumed: usize, img: &ConnectionImage, out: &[u8]) -> Result<(), SessionError> {
        self.rec.in_done += consumed as u64;
        self.rec.out_total += out.len() as u64;
        self.rec.image = encode_image(img);
        self.rec.pending.clear();
        self.rec.pending.extend_from_slice(out);
        self.z.region().write(T_SESSION, self.slot, &self.rec)?;
        if consumed > 0 {
            self.reader.delete(self.fd.as_fd(), consumed as u64)?;
        }
        Ok(())
    }

    /// Takes over the session `name` (`telnet:ID`) of a previous generation: returns the
    /// recorded session, the connection rebuilt from its image, and the output still owed to
    /// the client (what the crash kept from going out).
    pub fn resume(
        z: &'static Zlr,
        id: u64,
        fd: OwnedFd,
        settings: &ServerSettings,
        records: &mut Vec<(u32, SessionRec)>,
    ) -> Result<(Recorded, Connection, Vec<u8>), SessionError> {
        let Some(i) = records.iter().position(|(_, r)| r.id == id) else {
            return Err(SessionError::Inconsistent { id, why: "kept connection without a session record".into() });
        };
        let (slot, rec) = records.swap_remove(i);
        let bad = |why: String| SessionError::Inconsistent { id, why };
        let pos = restart::sys::tcp_positions(fd.as_fd())?;
        let written =
            pos.written.checked_sub(rec.base_written).ok_or_else(|| bad("kernel written counter below base".into()))?;
        let (mode, s) =
            if rec.fallback { (HreadMode::Fallback, Some(slab(z, slot))) } else { (HreadMode::PeekOff, None) };
        let deleted = if rec.fallback {
            z.region().read::<HoldCtl>(T_HOLD_CTL, slot)?.unwrap_or_default().head
        } else {
            pos.consumed
                .checked_sub(rec.base_consumed)
                .ok_or_else(|| bad("kernel consumed counter below base".into()))?
        };
        let skip = rec.in_done.checked_sub(deleted).ok_or_else(|| bad("more input deleted than processed".into()))?;
        let mut reader = HoldingReader::resume(fd.as_fd(), mode, s, skip)?;
        if skip > 0 {
            tracing::info!("telnet session {id}: deleting {skip} input byte(s) processed just before the crash");
            reader.delete(fd.as_fd(), skip)?;
        }
        let owed = rec
            .out_total
            .checked_sub(written)
            .ok_or_else(|| bad(format!("kernel says {written} bytes written, record {}", rec.out_total)))?;
        let first = if owed as usize <= rec.pending.len() {
            rec.pending[rec.pending.len() - owed as usize..].to_vec()
        } else {
            tracing::warn!(
                "telnet session {id}: {owed} bytes of output lost (the record keeps the last {})",
                rec.pending.len()
            );
            rec.pending.clone()
        };
        if owed > 0 {
            tracing::info!("telnet session {id}: sending the {owed} output byte(s) the crash held back");
        }
        let img: ConnectionImage = serde_json::from_slice(&rec.image)
            .map_err(|e| SessionError::Image { id, why: format!("image does not decode: {e}") })?;
        let conn = Connection::from_image(settings.clone(), &img, Instant::now())
            .map_err(|e| SessionError::Image { id, why: e.to_string() })?;
        Ok((Recorded { z, slot, rec, reader, fd }, conn, first))
    }

    /// Every session record in use, by slot (a corrupted one is cleared and logged).
    pub fn records(z: &Zlr) -> Vec<(u32, SessionRec)> {
        let n = z.region().count(T_SESSION).unwrap_or(0);
        let mut out = Vec::new();
        for slot in 0..n {
            match z.region().read::<SessionRec>(T_SESSION, slot) {
                Ok(Some(r)) if r.id != 0 => out.push((slot, r)),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("telnet session record {slot} unreadable ({e}); clearing it");
                    let _ = z.region().write(T_SESSION, slot, &SessionRec::default());
                }
            }
        }
        out
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        // Held bytes still queued would make close() send RST: delete them, as a consuming
        // server would have read them.
        let held = self.reader.held();
        if held > 0 {
            let _ = self.reader.delete(self.fd.as_fd(), held);
        }
        super::discard_input(self.fd.as_fd());
        // Release before close: once both copies are closed the peer sees FIN.
        self.z.release(&name(self.rec.id));
        if let Err(e) = self.z.region().write(T_SESSION, self.slot, &SessionRec::default()) {
            tracing::error!("telnet session record {}: {e}", self.slot);
        }
        free_slots().push(self.slot);
    }
}
