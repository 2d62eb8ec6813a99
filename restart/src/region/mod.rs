//! Shared state regions: named files in hugetlbfs (2 MiB pages), or in
//! `/dev/shm` with a warning when hugetlbfs is missing, that outlive a
//! generation. See [`codec`] for the on-disk format.
//!
//! Contents are position independent (offsets and inline bytes only), so a
//! new generation may map them anywhere. Records are written to the inactive
//! one of two checksummed copies and committed by their sequence number, so a
//! crash at any instruction leaves either the old or the new value, never a
//! mix.

pub mod codec;
pub mod record;

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

pub use codec::{Header, ParseError, SlotError, SlotState, TableDesc, TableKind};
pub use record::{Record, RecordError};

use crate::sys::Mapping;

/// Default hugetlbfs mount.
pub const HUGETLBFS_DIR: &str = "/dev/hugepages";
/// Fallback directory when hugetlbfs is missing.
pub const SHM_DIR: &str = "/dev/shm";
/// Hugepage size the region files are rounded to on hugetlbfs.
pub const HUGEPAGE: u64 = 2 << 20;

/// Where a region lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Backing {
    /// hugetlbfs, 2 MiB pages.
    HugeTlb,
    /// tmpfs (`/dev/shm`), 4 KiB pages: the fallback.
    Shm,
}

/// Where to look for and create regions.
#[derive(Debug, Clone)]
pub struct RegionOptions {
    /// hugetlbfs mount to use (default `/dev/hugepages`, or env
    /// `RESTART_HUGETLBFS`).
    pub hugetlbfs: PathBuf,
    /// Fallback directory (default `/dev/shm`, or env `RESTART_SHM_DIR`).
    pub shm: PathBuf,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions {
            hugetlbfs: std::env::var_os("RESTART_HUGETLBFS").map(PathBuf::from).unwrap_or_else(|| HUGETLBFS_DIR.into()),
            shm: std::env::var_os("RESTART_SHM_DIR").map(PathBuf::from).unwrap_or_else(|| SHM_DIR.into()),
        }
    }
}

/// An application's state layout: its name, version and tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutSpec {
    /// Layout name (at most 32 bytes), e.g. `"zlr-httpd"`.
    pub name: String,
    /// Layout version; a region of any other version is refused.
    pub version: u32,
    /// `(id, kind, record size, count)` per table.
    pub tables: Vec<(u32, TableKind, u32, u32)>,
}

/// Why a region could not be created or opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Region names are `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid region name {0:?}: use 1-64 of [A-Za-z0-9._-]")]
    InvalidName(String),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No region of that name in hugetlbfs nor in the fallback directory.
    #[error("state region {0:?} not found")]
    NotFound(String),
    /// The header is not a valid region header.
    #[error("state region {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: ParseError,
    },
    /// The file is shorter than its header says.
    #[error("state region {path} truncated: file has {found} bytes, header says {expected}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// File length.
        found: u64,
        /// Length recorded in the header.
        expected: u64,
    },
    /// The region was written by another layout version: refused, not misread.
    #[error("state region {path} has layout {name:?} version {found}, this program uses version {expected}: incompatible layout, refusing to read it")]
    LayoutVersion {
        /// The file.
        path: PathBuf,
        /// Layout name.
        name: String,
        /// Version in the region.
        found: u32,
        /// Version this program uses.
        expected: u32,
    },
    /// The region belongs to another application layout.
    #[error("state region {path} has layout {found:?}, expected {expected:?}")]
    LayoutName {
        /// The file.
        path: PathBuf,
        /// Name in the region.
        found: String,
        /// Name expected.
        expected: String,
    },
    /// Same name and version but different tables: a programming error.
    #[error("state region {path}: layout {name:?} v{version} has a different table directory than this program's")]
    LayoutMismatch {
        /// The file.
        path: PathBuf,
        /// Layout name.
        name: String,
        /// Layout version.
        version: u32,
    },
    /// The layout itself is invalid.
    #[error("invalid layout: {0}")]
    Layout(ParseError),
    /// The generation slot is corrupted.
    #[error("state region {path}: generation slot: {source}")]
    Generation {
        /// The file.
        path: PathBuf,
        /// Slot error.
        source: SlotError,
    },
}

/// Why a record or raw area could not be accessed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AccessError {
    /// No table with that id.
    #[error("no table {0} in this layout")]
    NoTable(u32),
    /// Entry index beyond the table.
    #[error("entry {index} out of range for table {table} ({count} entries)")]
    Index {
        /// Table id.
        table: u32,
        /// Index asked for.
        index: u32,
        /// Entries in the table.
        count: u32,
    },
    /// Record table used as raw or the other way round, or the record type's
    /// size differs from the table's.
    #[error("table {table}: {what}")]
    Kind {
        /// Table id.
        table: u32,
        /// What did not match.
        what: &'static str,
    },
    /// The slot is corrupted.
    #[error("table {table} entry {index}: {source}")]
    Slot {
        /// Table id.
        table: u32,
        /// Entry.
        index: u32,
        /// Slot error.
        source: SlotError,
    },
    /// The committed payload does not decode.
    #[error("table {table} entry {index}: {source}")]
    Record {
        /// Table id.
        table: u32,
        /// Entry.
        index: u32,
        /// Decode error.
        source: RecordError,
    },
}

/// What accesses share: the mapping, the committed sequence numbers and a
/// scratch buffer. One lock, so accesses from several threads are serialized
/// (copies into and out of the mapping never overlap in time).
struct Core {
    map: Mapping,
    seqs: Vec<Vec<u64>>,
    scratch: Vec<u8>,
}

struct Inner {
    core: Mutex<Core>,
    path: PathBuf,
    backing: Backing,
    header: Header,
    _file: File,
}

/// A mapped state region. Cheap to clone (shared handle); `Send + Sync`:
/// accesses from several threads are serialized by one lock.
#[derive(Clone)]
pub struct Region {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region").field("path", &self.inner.path).field("backing", &self.inner.backing).finish()
    }
}

const UNKNOWN_SEQ: u64 = u64::MAX;

fn check_name(name: &str) -> Result<(), OpenError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(OpenError::InvalidName(name.to_string()))
    }
}

fn file_name(name: &str) -> String {
    format!("zlr-state-{name}")
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OpenError + 'a {
    move |source| OpenError::Io { op, path: path.to_path_buf(), source }
}

impl Region {
    /// Create (or replace) region `name` with `layout`, generation 1, all
    /// records empty. Uses hugetlbfs when mounted, else `/dev/shm` with a
    /// warning. The file appears atomically (written under a temporary name
    /// and renamed), so a crash during creation never leaves a half region.
    pub fn create(name: &str, layout: &LayoutSpec, opts: &RegionOptions) -> Result<Region, OpenError> {
        check_name(name)?;
        if crate::sys::is_hugetlbfs(&opts.hugetlbfs) {
            match Self::create_in(name, layout, &opts.hugetlbfs, Backing::HugeTlb) {
                Ok(r) => {
                    let _ = std::fs::remove_file(opts.shm.join(file_name(name)));
                    return Ok(r);
                }
                Err(e) => tracing::warn!(
                    "state region {name}: hugetlbfs at {} unusable ({e}); falling back to {}",
                    opts.hugetlbfs.display(),
                    opts.shm.display()
                ),
            }
        } else {
            tracing::warn!(
                "state region {name}: hugetlbfs not mounted at {}; falling back to {} (4 KiB pages)",
                opts.hugetlbfs.display(),
                opts.shm.display()
            );
        }
        Self::create_in(name, layout, &opts.shm, Backing::Shm)
    }

    fn create_in(name: &str, layout: &LayoutSpec, dir: &Path, backing: Backing) -> Result<Region, OpenError> {
        let align = if backing == Backing::HugeTlb { HUGEPAGE } else { 4096 };
        let header =
            Header::for_layout(&layout.name, layout.version, &layout.tables, align).map_err(OpenError::Layout)?;
        let path = dir.join(file_name(name));
        let tmp = dir.join(format!(".{}.{}", file_name(name), std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        let res = (|| {
            file.set_len(header.total_len).map_err(io_err("size", &tmp))?;
            let map = Mapping::map(file.as_fd(), header.total_len as usize).map_err(io_err("mmap", &tmp))?;
            // Touch every page now so a hugepage shortage fails here, not later.
            let step = if backing == Backing::HugeTlb { HUGEPAGE as usize } else { 4096 };
            for off in (0..map.len()).step_by(step) {
                map.write(off, &[0]);
            }
            map.write(0, &header.encode());
            let mut g = vec![0u8; 2 * codec::copy_size(8)];
            codec::encode_copy(1, &1u64.to_le_bytes(), &mut g[..codec::copy_size(8)]);
            map.write(codec::GEN_SLOT_OFF, &g);
            std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
            Ok(map)
        })();
        let map = match res {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        Ok(Self::from_parts(map, path, backing, header, file))
    }

    fn from_parts(map: Mapping, path: PathBuf, backing: Backing, header: Header, file: File) -> Region {
        let seqs = header
            .tables
            .iter()
            .map(|t| if t.kind == TableKind::Records { vec![UNKNOWN_SEQ; t.count as usize] } else { Vec::new() })
            .collect();
        Region {
            inner: Arc::new(Inner {
                core: Mutex::new(Core { map, seqs, scratch: Vec::new() }),
                path,
                backing,
                header,
                _file: file,
            }),
        }
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave the mapping half
        // written in a way the checksums do not catch: keep going.
        self.inner.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open existing region `name` (hugetlbfs first, then the fallback
    /// directory) and check it against `layout`: magic, header format and
    /// checksum, file length, layout name and version, table directory.
    pub fn open(name: &str, layout: &LayoutSpec, opts: &RegionOptions) -> Result<Region, OpenError> {
        check_name(name)?;
        let candidates =
            [(opts.hugetlbfs.join(file_name(name)), Backing::HugeTlb), (opts.shm.join(file_name(name)), Backing::Shm)];
        let Some((path, backing)) = candidates.into_iter().find(|(p, _)| p.exists()) else {
            return Err(OpenError::NotFound(name.to_string()));
        };
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err("open", &path))?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        if len < codec::HEADER_SIZE as u64 {
            return Err(OpenError::Parse { path, source: ParseError::Truncated { found: len as usize } });
        }
        let map = Mapping::map(file.as_fd(), len as usize).map_err(io_err("mmap", &path))?;
        let mut hb = vec![0u8; codec::HEADER_SIZE];
        map.read(0, &mut hb);
        let header = Header::parse(&hb).map_err(|source| OpenError::Parse { path: path.clone(), source })?;
        if header.total_len != len {
            return Err(OpenError::Truncated { path, found: len, expected: header.total_len });
        }
        if header.layout_name != layout.name {
            return Err(OpenError::LayoutName { path, found: header.layout_name, expected: layout.name.clone() });
        }
        if header.layout_version != layout.version {
            return Err(OpenError::LayoutVersion {
                path,
                name: header.layout_name,
                found: header.layout_version,
                expected: layout.version,
            });
        }
        let want = Header::for_layout(&layout.name, layout.version, &layout.tables, 8).map_err(OpenError::Layout)?;
        if want.tables != header.tables {
            return Err(OpenError::LayoutMismatch { path, name: header.layout_name, version: header.layout_version });
        }
        let region = Self::from_parts(map, path.clone(), backing, header, file);
        region.generation_state().map_err(|source| OpenError::Generation { path, source })?;
        Ok(region)
    }

    /// Remove region `name` from both directories (clean shutdown).
    pub fn remove(name: &str, opts: &RegionOptions) {
        let _ = std::fs::remove_file(opts.hugetlbfs.join(file_name(name)));
        let _ = std::fs::remove_file(opts.shm.join(file_name(name)));
    }

    /// Path of the region file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where the region lives.
    pub fn backing(&self) -> Backing {
        self.inner.backing
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.inner.header
    }

    fn generation_state(&self) -> Result<(u64, u64), SlotError> {
        let mut g = [0u8; 2 * 24];
        self.core().map.read(codec::GEN_SLOT_OFF, &mut g);
        match codec::decode_slot(&g, 8)? {
            SlotState::Empty => Ok((0, 0)),
            SlotState::Valid { copy, seq } => {
                let p = codec::copy_payload(&g, 8, copy);
                let mut a = [0u8; 8];
                a.copy_from_slice(p);
                Ok((u64::from_le_bytes(a), seq))
            }
        }
    }

    /// Generation that last claimed the region.
    pub fn generation(&self) -> u64 {
        self.generation_state().map(|g| g.0).unwrap_or(0)
    }

    /// Record the generation now owning the region (crash-atomic).
    pub fn set_generation(&self, generation: u64) {
        let seq = self.generation_state().map(|g| g.1).unwrap_or(0) + 1;
        let cs = codec::copy_size(8);
        let mut c = vec![0u8; cs];
        codec::encode_copy(seq, &generation.to_le_bytes(), &mut c);
        self.core().map.write(codec::GEN_SLOT_OFF + (seq as usize % 2) * cs, &c);
    }

    fn table(&self, table: u32, kind: TableKind) -> Result<(usize, &TableDesc), AccessError> {
        let (i, t) = self
            .inner
            .header
            .tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.id == table)
            .ok_or(AccessError::NoTable(table))?;
        if t.kind != kind {
            return Err(AccessError::Kind { table, what: "table kind does not match the access" });
        }
        Ok((i, t))
    }

    fn entry(&self, table: u32, index: u32, kind: TableKind) -> Result<(usize, TableDesc, usize), AccessError> {
        let (ti, t) = self.table(table, kind)?;
        if index >= t.count {
            return Err(AccessError::Index { table, index, count: t.count });
        }
        Ok((ti, *t, (t.offset + t.stride() * u64::from(index)) as usize))
    }

    /// Number of entries in a table.
    pub fn count(&self, table: u32) -> Result<u32, AccessError> {
        let t = self.inner.header.tables.iter().find(|t| t.id == table).ok_or(AccessError::NoTable(table))?;
        Ok(t.count)
    }

    fn slot_state(core: &mut Core, ti: usize, t: &TableDesc, index: u32, off: usize) -> Result<SlotState, AccessError> {
        let cs = codec::copy_size(t.record_size as usize);
        let Core { map, seqs, scratch } = core;
        scratch.resize(2 * cs, 0);
        map.read(off, scratch);
        let st = codec::decode_slot(scratch, t.record_size as usize).map_err(|source| AccessError::Slot {
            table: t.id,
            index,
            source,
        })?;
        seqs[ti][index as usize] = match st {
            SlotState::Empty => 0,
            SlotState::Valid { seq, .. } => seq,
        };
        Ok(st)
    }

    /// Read the committed record of entry `index`; `None` if never written.
    pub fn read<R: Record>(&self, table: u32, index: u32) -> Result<Option<R>, AccessError> {
        let (ti, t, off) = self.entry(table, index, TableKind::Records)?;
        if R::SIZE != t.record_size as usize {
            return Err(AccessError::Kind { table, what: "record type size differs from the table's record size" });
        }
        let mut core = self.core();
        match Self::slot_state(&mut core, ti, &t, index, off)? {
            SlotState::Empty => Ok(None),
            SlotState::Valid { copy, .. } => {
                let p = codec::copy_payload(&core.scratch, t.record_size as usize, copy);
                R::decode(&mut record::Reader::new(p)).map(Some).map_err(|source| AccessError::Record {
                    table,
                    index,
                    source,
                })
            }
        }
    }

    /// Commit a new value of entry `index`: the inactive copy is written, so a
    /// crash anywhere in here leaves the previous value readable.
    pub fn write<R: Record>(&self, table: u32, index: u32, value: &R) -> Result<(), AccessError> {
        let (ti, t, off) = self.entry(table, index, TableKind::Records)?;
        let rs = t.record_size as usize;
        if R::SIZE != rs {
            return Err(AccessError::Kind { table, what: "record type size differs from the table's record size" });
        }
        let mut core = self.core();
        let mut seq = core.seqs[ti][index as usize];
        if seq == UNKNOWN_SEQ {
            // First touch in this generation: find the committed copy. A
            // corrupted slot is overwritten (the caller decided to write it).
            seq = match Self::slot_state(&mut core, ti, &t, index, off) {
                Ok(SlotState::Valid { seq, .. }) => seq,
                _ => 0,
            };
        }
        let next = seq + 1;
        let cs = codec::copy_size(rs);
        let Core { map, seqs, scratch } = &mut *core;
        scratch.resize(rs + cs, 0);
        let (payload, copy) = scratch.split_at_mut(rs);
        payload.fill(0);
        value.encode(&mut record::Writer::new(payload));
        codec::encode_copy(next, payload, copy);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        map.write(off + (next as usize % 2) * cs, copy);
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        seqs[ti][index as usize] = next;
        Ok(())
    }

    /// Size of each entry of a raw table.
    pub fn raw_size(&self, table: u32) -> Result<usize, AccessError> {
        Ok(self.table(table, TableKind::Raw)?.1.record_size as usize)
    }

    /// Copy bytes out of a raw entry at `at`.
    pub fn raw_read(&self, table: u32, index: u32, at: usize, out: &mut [u8]) -> Result<(), AccessError> {
        let (_, t, off) = self.entry(table, index, TableKind::Raw)?;
        if at.checked_add(out.len()).filter(|&e| e <= t.record_size as usize).is_none() {
            return Err(AccessError::Kind { table, what: "raw access beyond the entry" });
        }
        self.core().map.read(off + at, out);
        Ok(())
    }

    /// Copy bytes into a raw entry at `at`.
    pub fn raw_write(&self, table: u32, index: u32, at: usize, data: &[u8]) -> Result<(), AccessError> {
        let (_, t, off) = self.entry(table, index, TableKind::Raw)?;
        if at.checked_add(data.len()).filter(|&e| e <= t.record_size as usize).is_none() {
            return Err(AccessError::Kind { table, what: "raw access beyond the entry" });
        }
        self.core().map.write(off + at, data);
        Ok(())
    }

    /// Test hook: overwrite bytes anywhere in the region (to simulate
    /// corruption or a torn write).
    #[doc(hidden)]
    pub fn poke(&self, at: usize, data: &[u8]) {
        self.core().map.write(at, data);
    }
}
