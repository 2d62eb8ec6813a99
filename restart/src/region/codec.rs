//! Sans-IO codec of a state region: the header with its table directory, and
//! the dual-copy record slots. Pure functions over byte slices; nothing here
//! panics on any input (property-tested and fuzzed).
//!
//! ```text
//! 0      8      12       16        48        56      60     64            64+24n   1024      2048           4096
//! |magic |format|layout_v|layout nm|total len|ntables|rsvd  |table dir ... |         |checksum |gen slot ...  |payload
//! ```
//! All integers little-endian. The header checksum covers bytes 0..1024
//! (everything immutable after creation); the generation lives in its own
//! dual-copy slot so bumping it never invalidates the header.

use thiserror::Error;

/// Region file magic.
pub const MAGIC: [u8; 8] = *b"ZLRSTATE";
/// Version of this header format (not of the application's layout).
pub const FORMAT_VERSION: u32 = 1;
/// Bytes reserved for the header; the payload starts here.
pub const HEADER_SIZE: usize = 4096;
/// Largest number of tables in a layout.
pub const MAX_TABLES: usize = 32;
/// Longest layout name in bytes.
pub const NAME_LEN: usize = 32;
const DIR_OFF: usize = 64;
const DIR_ENTRY: usize = 24;
const CHECKSUM_OFF: usize = 1024;
/// Offset of the generation slot inside the header.
pub const GEN_SLOT_OFF: usize = 2048;
/// Size of one copy's prefix: seq u64, checksum u32, len u32.
pub const COPY_PREFIX: usize = 16;
/// Largest record payload (per copy).
pub const MAX_RECORD: u32 = 1 << 20;

/// 64-bit checksum used for headers and record copies: a word-at-a-time
/// multiply/xor mix (not cryptographic; it detects torn writes and
/// corruption, which is all it is for).
pub fn checksum(data: &[u8]) -> u64 {
    const P: u64 = 0x9E37_79B9_7F4A_7C15;
    const Q: u64 = 0xC2B2_AE3D_27D4_EB4F;
    // Four independent lanes over 32-byte blocks keep the multiplier busy.
    let mut lanes = [
        0xCBF2_9CE4_8422_2325u64,
        0x8422_2325_CBF2_9CE4,
        0x2545_F491_4F6C_DD1D,
        0x9E37_79B9_7F4A_7C15 ^ data.len() as u64,
    ];
    let mut blocks = data.chunks_exact(32);
    for b in &mut blocks {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let w = u64::from_le_bytes([
                b[i * 8],
                b[i * 8 + 1],
                b[i * 8 + 2],
                b[i * 8 + 3],
                b[i * 8 + 4],
                b[i * 8 + 5],
                b[i * 8 + 6],
                b[i * 8 + 7],
            ]);
            *lane = (*lane ^ w).wrapping_mul(P).rotate_left(31);
        }
    }
    let mut h = lanes[0] ^ lanes[1].rotate_left(7) ^ lanes[2].rotate_left(13) ^ lanes[3].rotate_left(19);
    let mut words = blocks.remainder().chunks(8);
    for c in &mut words {
        let mut t = [0u8; 8];
        t[..c.len()].copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(t)).wrapping_mul(Q);
        h ^= h >> 29;
    }
    h = (h ^ data.len() as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 31;
    h = h.wrapping_mul(P);
    h ^ (h >> 32)
}

/// What a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TableKind {
    /// Dual-copy checksummed records: every write is atomic against crashes.
    Records,
    /// Raw byte areas (e.g. hread fallback hold buffers); the user orders
    /// writes against a `Records` entry that says which bytes are valid.
    Raw,
}

impl TableKind {
    fn code(self) -> u32 {
        match self {
            TableKind::Records => 1,
            TableKind::Raw => 2,
        }
    }
    fn from_code(c: u32) -> Option<TableKind> {
        match c {
            1 => Some(TableKind::Records),
            2 => Some(TableKind::Raw),
            _ => None,
        }
    }
}

/// One table in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDesc {
    /// Application-chosen table id.
    pub id: u32,
    /// Record or raw.
    pub kind: TableKind,
    /// Payload bytes per entry (per copy for `Records`).
    pub record_size: u32,
    /// Number of entries.
    pub count: u32,
    /// Byte offset of entry 0 from the start of the region.
    pub offset: u64,
}

impl TableDesc {
    /// Bytes one entry occupies in the region.
    pub fn stride(&self) -> u64 {
        match self.kind {
            TableKind::Records => 2 * copy_size(self.record_size as usize) as u64,
            TableKind::Raw => round_up(self.record_size as u64, 8),
        }
    }
    /// Bytes the whole table occupies.
    pub fn bytes(&self) -> u64 {
        self.stride() * u64::from(self.count)
    }
}

/// Bytes one copy of a record of `record_size` occupies.
pub fn copy_size(record_size: usize) -> usize {
    COPY_PREFIX + record_size.div_ceil(8) * 8
}

fn round_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// The parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Application layout name.
    pub layout_name: String,
    /// Application layout version.
    pub layout_version: u32,
    /// Total region length in bytes (the file's size).
    pub total_len: u64,
    /// Table directory.
    pub tables: Vec<TableDesc>,
}

/// Why a header could not be parsed. Every variant is a refusal: the region is
/// not read further.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than a header.
    #[error("region truncated: {found} bytes, a header needs {HEADER_SIZE}")]
    Truncated {
        /// Bytes available.
        found: usize,
    },
    /// Not a state region at all.
    #[error("bad magic {found:02x?}: not a restart state region")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },
    /// A header format this build does not know.
    #[error("region header format {found} is not supported (this build reads format {FORMAT_VERSION})")]
    Format {
        /// Format found.
        found: u32,
    },
    /// Header bytes do not match their checksum.
    #[error("region header checksum mismatch (stored {stored:#018x}, computed {computed:#018x}): corrupted")]
    Checksum {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: u64,
    },
    /// The table directory is inconsistent.
    #[error("region table directory invalid: {0}")]
    Directory(String),
    /// Layout name is not UTF-8.
    #[error("region layout name is not valid UTF-8")]
    Name,
}

fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn rd_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

impl Header {
    /// Lay out `tables` after the header; `align` is the file size granule
    /// (2 MiB on hugetlbfs, 4 KiB otherwise).
    pub fn for_layout(
        name: &str,
        version: u32,
        tables: &[(u32, TableKind, u32, u32)],
        align: u64,
    ) -> Result<Header, ParseError> {
        if name.len() > NAME_LEN {
            return Err(ParseError::Directory(format!("layout name longer than {NAME_LEN} bytes")));
        }
        let mut off = HEADER_SIZE as u64;
        let mut out = Vec::new();
        for &(id, kind, record_size, count) in tables {
            let d = TableDesc { id, kind, record_size, count, offset: off };
            off = round_up(off + d.bytes(), 64);
            out.push(d);
        }
        let h = Header {
            layout_name: name.to_string(),
            layout_version: version,
            total_len: round_up(off, align.max(8)),
            tables: out,
        };
        h.validate()?;
        Ok(h)
    }

    fn validate(&self) -> Result<(), ParseError> {
        let bad = |m: String| Err(ParseError::Directory(m));
        if self.tables.len() > MAX_TABLES {
            return bad(format!("{} tables, at most {MAX_TABLES}", self.tables.len()));
        }
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables[..i].iter().any(|o| o.id == t.id) {
                return bad(format!("table id {} appears twice", t.id));
            }
            if t.record_size == 0 || t.record_size > MAX_RECORD {
                return bad(format!("table {} record size {} out of range", t.id, t.record_size));
            }
            let end = t.offset.checked_add(t.bytes());
            match end {
                Some(e) if t.offset >= HEADER_SIZE as u64 && e <= self.total_len && t.offset % 8 == 0 => {
                    spans.push((t.offset, e))
                }
                _ => {
                    return bad(format!(
                        "table {} at {}+{} outside region of {} bytes",
                        t.id,
                        t.offset,
                        t.bytes(),
                        self.total_len
                    ))
                }
            }
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[0].1 > w[1].0) {
            return bad("tables overlap".into());
        }
        Ok(())
    }

    /// Encode into the first [`HEADER_SIZE`] bytes (the generation slot area
    /// is left zero).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.layout_version.to_le_bytes());
        let n = self.layout_name.len().min(NAME_LEN);
        b[16..16 + n].copy_from_slice(&self.layout_name.as_bytes()[..n]);
        b[48..56].copy_from_slice(&self.total_len.to_le_bytes());
        b[56..60].copy_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for (i, t) in self.tables.iter().enumerate().take(MAX_TABLES) {
            let o = DIR_OFF + i * DIR_ENTRY;
            b[o..o + 4].copy_from_slice(&t.id.to_le_bytes());
            b[o + 4..o + 8].copy_from_slice(&t.kind.code().to_le_bytes());
            b[o + 8..o + 12].copy_from_slice(&t.record_size.to_le_bytes());
            b[o + 12..o + 16].copy_from_slice(&t.count.to_le_bytes());
            b[o + 16..o + 24].copy_from_slice(&t.offset.to_le_bytes());
        }
        let c = checksum(&b[..CHECKSUM_OFF]);
        b[CHECKSUM_OFF..CHECKSUM_OFF + 8].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Parse and validate a header from the start of a region.
    pub fn parse(b: &[u8]) -> Result<Header, ParseError> {
        if b.len() < HEADER_SIZE {
            return Err(ParseError::Truncated { found: b.len() });
        }
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        if magic != MAGIC {
            return Err(ParseError::BadMagic { found: magic });
        }
        let format = rd_u32(b, 8);
        if format != FORMAT_VERSION {
            return Err(ParseError::Format { found: format });
        }
        let stored = rd_u64(b, CHECKSUM_OFF);
        let computed = checksum(&b[..CHECKSUM_OFF]);
        if stored != computed {
            return Err(ParseError::Checksum { stored, computed });
        }
        let layout_version = rd_u32(b, 12);
        let name_bytes = &b[16..16 + NAME_LEN];
        let end = name_bytes.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        let layout_name = std::str::from_utf8(&name_bytes[..end]).map_err(|_| ParseError::Name)?.to_string();
        let total_len = rd_u64(b, 48);
        let n = rd_u32(b, 56) as usize;
        if n > MAX_TABLES {
            return Err(ParseError::Directory(format!("{n} tables, at most {MAX_TABLES}")));
        }
        let mut tables = Vec::with_capacity(n);
        for i in 0..n {
            let o = DIR_OFF + i * DIR_ENTRY;
            let kind = TableKind::from_code(rd_u32(b, o + 4))
                .ok_or_else(|| ParseError::Directory(format!("table {i} has unknown kind {}", rd_u32(b, o + 4))))?;
            tables.push(TableDesc {
                id: rd_u32(b, o),
                kind,
                record_size: rd_u32(b, o + 8),
                count: rd_u32(b, o + 12),
                offset: rd_u64(b, o + 16),
            });
        }
        let h = Header { layout_name, layout_version, total_len, tables };
        h.validate()?;
        Ok(h)
    }
}

/// Encode one copy of a record: `seq`, checksum, length, then the payload
/// padded to 8 bytes. `out` must be `copy_size(payload.len())` long.
pub fn encode_copy(seq: u64, payload: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), copy_size(payload.len()));
    out.fill(0);
    out[0..8].copy_from_slice(&seq.to_le_bytes());
    out[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    out[COPY_PREFIX..COPY_PREFIX + payload.len()].copy_from_slice(payload);
    let c = copy_checksum(out);
    out[8..12].copy_from_slice(&c.to_le_bytes());
}

fn copy_checksum(copy: &[u8]) -> u32 {
    let mut h = checksum(&copy[COPY_PREFIX..]);
    h ^= checksum(&copy[0..8]).rotate_left(17) ^ u64::from(rd_u32(copy, 12)).wrapping_mul(0x9E37_79B9);
    (h ^ (h >> 32)) as u32
}

/// The state of one dual-copy slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Never written (both copies zero, or a first write torn by a crash).
    Empty,
    /// The committed copy: which one and its sequence number.
    Valid {
        /// 0 or 1.
        copy: usize,
        /// Sequence number of the last committed write.
        seq: u64,
    },
}

/// Why a slot could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SlotError {
    /// Both copies hold data but neither passes its checksum.
    #[error("record slot corrupted: neither copy passes its checksum")]
    Corrupt,
    /// Slot bytes shorter than two copies.
    #[error("record slot truncated")]
    Truncated,
}

/// Decode a slot (two copies of `copy_len` bytes each, back to back) and pick
/// the committed copy: the valid one with the highest sequence number.
pub fn decode_slot(slot: &[u8], record_size: usize) -> Result<SlotState, SlotError> {
    let cs = copy_size(record_size);
    if slot.len() < 2 * cs {
        return Err(SlotError::Truncated);
    }
    let mut best: Option<(usize, u64)> = None;
    let mut nonzero = 0;
    for i in 0..2 {
        let c = &slot[i * cs..(i + 1) * cs];
        if c.iter().any(|&x| x != 0) {
            nonzero += 1;
        }
        let seq = rd_u64(c, 0);
        let len = rd_u32(c, 12) as usize;
        if seq == 0 || len != record_size || u32::from_le_bytes([c[8], c[9], c[10], c[11]]) != copy_checksum(c) {
            continue;
        }
        match best {
            Some((_, s)) if seq <= s => {}
            _ => best = Some((i, seq)),
        }
    }
    match best {
        Some((copy, seq)) => Ok(SlotState::Valid { copy, seq }),
        None if nonzero < 2 => Ok(SlotState::Empty),
        None => Err(SlotError::Corrupt),
    }
}

/// Payload bytes of copy `copy` of a slot.
pub fn copy_payload(slot: &[u8], record_size: usize, copy: usize) -> &[u8] {
    let cs = copy_size(record_size);
    &slot[copy * cs + COPY_PREFIX..copy * cs + COPY_PREFIX + record_size]
}

#[cfg(test)]
mod tests;
