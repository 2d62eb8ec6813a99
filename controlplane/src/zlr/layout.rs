//! The control plane's state region layout: tables and records.
//!
//! | table | kind | what |
//! |---|---|---|
//! | [`T_GLOBAL`] | 1 record | channel id counter |
//! | [`T_BLOB_CTL`] | [`BLOBS`] records | which half of each blob is current, its length and checksum |
//! | [`T_BLOB_DATA`] | 2 × [`BLOBS`] raw | the blobs: running-config, health state (double-buffered) |
//! | [`T_SESSION`] | one record per telnet session slot | [`SessionRec`]: positions, the connection image, pending output |
//! | [`T_HOLD_CTL`], [`T_HOLD_DATA`] | per session | hread fallback hold buffers (kernels without `SO_PEEK_OFF` on TCP) |
//! | [`T_BINDING`], [`T_DROP`], [`T_CACHE_GEN`] | records | the binding cache, one record per binding / drop fraction, and its generation |

use restart::hread::HoldCtl;
use restart::region::record::{Reader, Record, RecordError, Writer};
use restart::region::{LayoutSpec, TableKind};

/// Layout name.
pub const LAYOUT_NAME: &str = "acm-controlplane";
/// Layout version: bump on any change of a record below.
pub const LAYOUT_VERSION: u32 = 1;

/// Global record.
pub const T_GLOBAL: u32 = 1;
/// Blob control records.
pub const T_BLOB_CTL: u32 = 2;
/// Blob halves.
pub const T_BLOB_DATA: u32 = 3;
/// Telnet session records.
pub const T_SESSION: u32 = 4;
/// hread fallback control.
pub const T_HOLD_CTL: u32 = 5;
/// hread fallback rings.
pub const T_HOLD_DATA: u32 = 6;
/// Binding cache: one record per binding ([`super::binding_records::BindingRec`]).
pub const T_BINDING: u32 = 7;
/// Binding cache: drop fractions ([`super::binding_records::DropRec`]).
pub const T_DROP: u32 = 8;
/// Binding cache: its generation counter.
pub const T_CACHE_GEN: u32 = 9;

/// Bindings the region can hold.
pub const BINDING_SLOTS: u32 = 16384;
/// Services with a drop fraction the region can hold.
pub const DROP_SLOTS: u32 = 1024;

/// Blobs: the running-config, the health checker's state.
pub const BLOBS: u32 = 2;
/// Largest blob (bytes of JSON or config text).
pub const BLOB_CAP: u32 = 1 << 20;
/// Room for a connection image (JSON) in a session record.
pub const IMAGE_CAP: usize = 12 * 1024;
/// Room for the last step's output in a session record.
pub const PENDING_CAP: usize = 16 * 1024;
/// Hold ring per session (fallback mode).
pub const HOLD_CAP: u32 = 4096;

/// The layout for `sessions` telnet session slots.
pub fn layout(sessions: u32) -> LayoutSpec {
    let sessions = sessions.max(1);
    LayoutSpec {
        name: LAYOUT_NAME.into(),
        version: LAYOUT_VERSION,
        tables: vec![
            (T_GLOBAL, TableKind::Records, Global::SIZE as u32, 1),
            (T_BLOB_CTL, TableKind::Records, BlobCtl::SIZE as u32, BLOBS),
            (T_BLOB_DATA, TableKind::Raw, BLOB_CAP, 2 * BLOBS),
            (T_SESSION, TableKind::Records, SessionRec::SIZE as u32, sessions),
            (T_HOLD_CTL, TableKind::Records, HoldCtl::SIZE as u32, sessions),
            (T_HOLD_DATA, TableKind::Raw, HOLD_CAP, sessions),
            (T_BINDING, TableKind::Records, super::binding_records::BindingRec::SIZE as u32, BINDING_SLOTS),
            (T_DROP, TableKind::Records, super::binding_records::DropRec::SIZE as u32, DROP_SLOTS),
            (T_CACHE_GEN, TableKind::Records, Global::SIZE as u32, 1),
        ],
    }
}

/// A counter: the next channel id (telnet sessions, API connections) in [`T_GLOBAL`], the
/// binding cache's generation in [`T_CACHE_GEN`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Global {
    /// The value.
    pub next_id: u64,
}

impl Record for Global {
    const SIZE: usize = 8;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.next_id);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        Ok(Global { next_id: r.u64()? })
    }
}

/// Which half of a blob is current.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCtl {
    /// 0 or 1.
    pub half: u8,
    /// Bytes.
    pub len: u32,
    /// FNV-1a 64 of the bytes.
    pub checksum: u64,
}

impl Record for BlobCtl {
    const SIZE: usize = 16;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.half);
        w.skip(3);
        w.u32(self.len);
        w.u64(self.checksum);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let half = r.u8()?;
        r.bytes(3)?;
        let len = r.u32()?;
        let checksum = r.u64()?;
        if half > 1 {
            return Err(RecordError::Invalid { field: "blob half", value: u64::from(half) });
        }
        if len > BLOB_CAP {
            return Err(RecordError::Invalid { field: "blob length", value: u64::from(len) });
        }
        Ok(BlobCtl { half, len, checksum })
    }
}

/// One telnet session, written after every input it processed (before that input is deleted
/// from the socket and before the output goes out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRec {
    /// Channel id (`telnet:ID`); 0: free slot.
    pub id: u64,
    /// Session number (logs, `Origin::Cli`).
    pub number: u64,
    /// Kernel positions when the session was accepted.
    pub base_written: u64,
    /// Kernel consumed counter when the session was accepted.
    pub base_consumed: u64,
    /// hread in fallback mode (hold buffer in the region).
    pub fallback: bool,
    /// Input bytes processed (relative to `base_consumed`).
    pub in_done: u64,
    /// Output bytes produced for them, including `pending` (relative to `base_written`).
    pub out_total: u64,
    /// The connection's image (JSON) after `in_done`.
    pub image: Vec<u8>,
    /// The output of the last step (its tail, when it was longer than [`PENDING_CAP`]).
    pub pending: Vec<u8>,
}

impl Record for SessionRec {
    const SIZE: usize = 8 * 6 + 8 + 4 + IMAGE_CAP + 4 + PENDING_CAP;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.id);
        w.u64(self.number);
        w.u64(self.base_written);
        w.u64(self.base_consumed);
        w.u64(self.in_done);
        w.u64(self.out_total);
        w.u8(u8::from(self.fallback));
        w.skip(7);
        w.u32(self.image.len().min(IMAGE_CAP) as u32);
        w.bytes(&self.image[..self.image.len().min(IMAGE_CAP)]);
        w.skip(IMAGE_CAP - self.image.len().min(IMAGE_CAP));
        let p = &self.pending[self.pending.len().saturating_sub(PENDING_CAP)..];
        w.u32(p.len() as u32);
        w.bytes(p);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let id = r.u64()?;
        let number = r.u64()?;
        let base_written = r.u64()?;
        let base_consumed = r.u64()?;
        let in_done = r.u64()?;
        let out_total = r.u64()?;
        let fallback = match r.u8()? {
            0 => false,
            1 => true,
            v => return Err(RecordError::Invalid { field: "fallback", value: u64::from(v) }),
        };
        r.bytes(7)?;
        let n = r.u32()? as usize;
        if n > IMAGE_CAP {
            return Err(RecordError::Invalid { field: "image length", value: n as u64 });
        }
        let image = r.bytes(IMAGE_CAP)?[..n].to_vec();
        let n = r.u32()? as usize;
        if n > PENDING_CAP {
            return Err(RecordError::Invalid { field: "pending length", value: n as u64 });
        }
        let pending = r.bytes(PENDING_CAP)?[..n].to_vec();
        if (pending.len() as u64) > out_total {
            return Err(RecordError::Invalid { field: "pending beyond output total", value: out_total });
        }
        Ok(SessionRec { id, number, base_written, base_consumed, fallback, in_done, out_total, image, pending })
    }
}

/// FNV-1a, 64 bit (blob checksums: the region checks its records, not raw areas).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<R: Record + PartialEq + std::fmt::Debug>(v: &R) {
        let mut buf = vec![0u8; R::SIZE];
        v.encode(&mut Writer::new(&mut buf));
        assert_eq!(&R::decode(&mut Reader::new(&buf)).unwrap(), v);
    }

    #[test]
    fn records_round_trip() {
        round_trip(&Global { next_id: 7 });
        round_trip(&BlobCtl { half: 1, len: 99, checksum: 5 });
        round_trip(&SessionRec {
            id: 3,
            number: 4,
            base_written: 1,
            base_consumed: 2,
            fallback: true,
            in_done: 10,
            out_total: 20,
            image: b"{}".to_vec(),
            pending: b"abc".to_vec(),
        });
    }

    proptest::proptest! {
        /// Whatever bytes a slot holds, decoding is an answer or an error, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), fill in proptest::prelude::any::<u8>()) {
            let mut slot = vec![fill; SessionRec::SIZE];
            slot[..bytes.len()].copy_from_slice(&bytes);
            let _ = SessionRec::decode(&mut Reader::new(&slot));
            let _ = BlobCtl::decode(&mut Reader::new(&bytes));
            let _ = super::super::binding_records::BindingRec::decode(&mut Reader::new(&bytes));
            let _ = super::super::binding_records::DropRec::decode(&mut Reader::new(&bytes));
            let _ = Global::decode(&mut Reader::new(&bytes));
        }
    }

    #[test]
    fn bad_records_are_errors() {
        let mut buf = vec![0u8; BlobCtl::SIZE];
        BlobCtl { half: 1, len: 9, checksum: 0 }.encode(&mut Writer::new(&mut buf));
        buf[0] = 7;
        assert!(BlobCtl::decode(&mut Reader::new(&buf)).is_err());
        let mut buf = vec![0u8; SessionRec::SIZE];
        SessionRec { out_total: 1, pending: b"x".to_vec(), ..SessionRec::default() }.encode(&mut Writer::new(&mut buf));
        buf[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SessionRec::decode(&mut Reader::new(&buf)).is_err());
    }
}
