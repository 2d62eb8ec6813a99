//! zlr-httpd's state layout: one global record and one record per connection
//! slot, with the thesis's stages (reading → processing → sending), plus the
//! hread fallback hold buffers.

use restart::hread::HoldCtl;
use restart::region::record::{Reader, Record, RecordError, Writer};
use restart::region::{LayoutSpec, TableKind};

/// Layout name.
pub(crate) const LAYOUT_NAME: &str = "zlr-httpd";
/// Layout version of this build (env `ZLR_LAYOUT_VERSION` overrides it, to
/// exercise the refusal of incompatible layouts).
pub(crate) const LAYOUT_VERSION: u32 = 1;
pub(crate) const T_GLOBAL: u32 = 1;
pub(crate) const T_CONN: u32 = 2;
pub(crate) const T_HOLD_CTL: u32 = 3;
pub(crate) const T_HOLD_DATA: u32 = 4;
/// Longest request (head + body) held.
pub(crate) const MAX_REQUEST: usize = 8192;
pub(crate) const PATH_CAP: usize = 256;

pub(crate) fn layout_version() -> u32 {
    std::env::var("ZLR_LAYOUT_VERSION").ok().and_then(|v| v.parse().ok()).unwrap_or(LAYOUT_VERSION)
}

pub(crate) fn layout(max_conns: u32) -> LayoutSpec {
    LayoutSpec {
        name: LAYOUT_NAME.into(),
        version: layout_version(),
        tables: vec![
            (T_GLOBAL, TableKind::Records, Global::SIZE as u32, 1),
            (T_CONN, TableKind::Records, ConnRec::SIZE as u32, max_conns),
            (T_HOLD_CTL, TableKind::Records, HoldCtl::SIZE as u32, max_conns),
            (T_HOLD_DATA, TableKind::Raw, MAX_REQUEST as u32, max_conns),
        ],
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Global {
    pub next_conn_id: u64,
}

impl Record for Global {
    const SIZE: usize = 8;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u64(self.next_conn_id);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        Ok(Global { next_conn_id: r.u64()? })
    }
}

/// Connection stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Stage {
    #[default]
    Free = 0,
    Reading = 1,
    Processing = 2,
    Sending = 3,
}

impl Stage {
    fn from_u8(v: u8) -> Result<Stage, RecordError> {
        Ok(match v {
            0 => Stage::Free,
            1 => Stage::Reading,
            2 => Stage::Processing,
            3 => Stage::Sending,
            _ => return Err(RecordError::Invalid { field: "stage", value: u64::from(v) }),
        })
    }
}

/// Per-connection state record. Positions are "app" positions: bytes of the
/// connection's input/output stream counted from its start; the kernel's
/// counters minus `base_*` give the same numbers, exactly, at any instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnRec {
    pub stage: Stage,
    pub conn_id: u64,
    pub base_written: u64,
    pub base_consumed: u64,
    /// Input position where the current request starts.
    pub req_start: u64,
    pub req_len: u32,
    pub head_only: bool,
    pub keep_alive: bool,
    /// hread ran in fallback mode on this connection.
    pub fallback: bool,
    pub path: Vec<u8>,
    /// Requested range (inclusive), if any.
    pub range: Option<(u64, Option<u64>)>,
    pub suffix_range: bool,
    pub status: u16,
    pub file_size: u64,
    pub file_mtime: i64,
    pub date_secs: u64,
    /// Output position where the current response starts.
    pub resp_start: u64,
    pub total_len: u64,
    /// Bytes of the response confirmed sent (recovery derives the exact value
    /// from the kernel; this is the write-ahead log's confirmation).
    pub bytes_sent: u64,
}

impl Record for ConnRec {
    const SIZE: usize = 384;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.stage as u8);
        w.u64(self.conn_id);
        w.u64(self.base_written);
        w.u64(self.base_consumed);
        w.u64(self.req_start);
        w.u32(self.req_len);
        w.u8(u8::from(self.head_only)
            | (u8::from(self.keep_alive) << 1)
            | (u8::from(self.range.is_some()) << 2)
            | (u8::from(self.suffix_range) << 3)
            | (u8::from(self.range.is_some_and(|r| r.1.is_some())) << 4)
            | (u8::from(self.fallback) << 5));
        w.str_field(&self.path, PATH_CAP);
        let (a, b) = self.range.unwrap_or((0, None));
        w.u64(a);
        w.u64(b.unwrap_or(0));
        w.u16(self.status);
        w.u64(self.file_size);
        w.u64(self.file_mtime as u64);
        w.u64(self.date_secs);
        w.u64(self.resp_start);
        w.u64(self.total_len);
        w.u64(self.bytes_sent);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let stage = Stage::from_u8(r.u8()?)?;
        let conn_id = r.u64()?;
        let base_written = r.u64()?;
        let base_consumed = r.u64()?;
        let req_start = r.u64()?;
        let req_len = r.u32()?;
        let flags = r.u8()?;
        let path = r.str_field(PATH_CAP)?.to_vec();
        let a = r.u64()?;
        let b = r.u64()?;
        Ok(ConnRec {
            stage,
            conn_id,
            base_written,
            base_consumed,
            req_start,
            req_len,
            head_only: flags & 1 != 0,
            keep_alive: flags & 2 != 0,
            fallback: flags & 32 != 0,
            path,
            range: (flags & 4 != 0).then_some((a, (flags & 16 != 0).then_some(b))),
            suffix_range: flags & 8 != 0,
            status: r.u16()?,
            file_size: r.u64()?,
            file_mtime: r.u64()? as i64,
            date_secs: r.u64()?,
            resp_start: r.u64()?,
            total_len: r.u64()?,
            bytes_sent: r.u64()?,
        })
    }
}
