//! Blobs in the state region: variable-length bytes (the running-config as text, the health
//! checker's state as JSON), crash-atomic by double buffering: the new bytes go to the half
//! that is not current, then one record write ([`BlobCtl`]: half, length, checksum) commits
//! them. A crash at any instruction leaves the old or the new blob; a blob whose bytes do not
//! match the checksum is reported, never used.

use thiserror::Error;

use restart::region::{AccessError, Region};

use super::layout::{fnv1a, BlobCtl, BLOB_CAP, T_BLOB_CTL, T_BLOB_DATA};

/// The running-config (CLI text).
pub const BLOB_CONFIG: u32 = 0;
/// The health checker's state (JSON of [`crate::services::health::HealthImage`]).
pub const BLOB_HEALTH: u32 = 1;

/// Why a blob could not be written or read.
#[derive(Debug, Error)]
pub enum BlobError {
    /// Larger than a blob half.
    #[error("blob {blob}: {len} bytes, at most {BLOB_CAP}")]
    TooLarge {
        /// Blob.
        blob: u32,
        /// Its length.
        len: usize,
    },
    /// The region refused the access (corrupted record, wrong layout).
    #[error("blob {blob}: {source}")]
    Access {
        /// Blob.
        blob: u32,
        /// Region error.
        source: AccessError,
    },
    /// The bytes do not match the committed checksum.
    #[error("blob {blob}: checksum mismatch ({len} bytes)")]
    Checksum {
        /// Blob.
        blob: u32,
        /// Committed length.
        len: u32,
    },
}

/// Commits `bytes` as the new value of `blob`.
pub fn write(region: &Region, blob: u32, bytes: &[u8]) -> Result<(), BlobError> {
    if bytes.len() > BLOB_CAP as usize {
        return Err(BlobError::TooLarge { blob, len: bytes.len() });
    }
    let acc = |source| BlobError::Access { blob, source };
    // A corrupted control record: write half 0 and overwrite the record.
    let cur = region.read::<BlobCtl>(T_BLOB_CTL, blob).ok().flatten();
    let half = cur.map_or(0, |c| 1 - c.half);
    region.raw_write(T_BLOB_DATA, 2 * blob + u32::from(half), 0, bytes).map_err(acc)?;
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    let ctl = BlobCtl { half, len: bytes.len() as u32, checksum: fnv1a(bytes) };
    region.write(T_BLOB_CTL, blob, &ctl).map_err(acc)
}

/// The committed value of `blob`; `None` if never written.
pub fn read(region: &Region, blob: u32) -> Result<Option<Vec<u8>>, BlobError> {
    let acc = |source| BlobError::Access { blob, source };
    let Some(ctl) = region.read::<BlobCtl>(T_BLOB_CTL, blob).map_err(acc)? else { return Ok(None) };
    let mut bytes = vec![0u8; ctl.len as usize];
    region.raw_read(T_BLOB_DATA, 2 * blob + u32::from(ctl.half), 0, &mut bytes).map_err(acc)?;
    if fnv1a(&bytes) != ctl.checksum {
        return Err(BlobError::Checksum { blob, len: ctl.len });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zlr::layout::layout;
    use restart::region::RegionOptions;

    fn region(name: &str) -> (Region, RegionOptions, tempfile::TempDir) {
        // /dev/shm-like fallback in a temp dir: no hugepages needed for this unit test.
        let dir = tempfile::tempdir().unwrap();
        let opts = RegionOptions { hugetlbfs: dir.path().join("none"), shm: dir.path().to_path_buf() };
        (Region::create(name, &layout(2), &opts).unwrap(), opts, dir)
    }

    #[test]
    fn blobs_round_trip_and_alternate_halves() {
        let (r, opts, _d) = region("blob-rt");
        assert_eq!(read(&r, BLOB_CONFIG).unwrap(), None);
        write(&r, BLOB_CONFIG, b"first").unwrap();
        write(&r, BLOB_CONFIG, b"second, longer").unwrap();
        write(&r, BLOB_HEALTH, b"hostname x\n").unwrap();
        assert_eq!(read(&r, BLOB_CONFIG).unwrap().unwrap(), b"second, longer");
        // Reopened (a new generation): the same.
        drop(r);
        let r = Region::open("blob-rt", &layout(2), &opts).unwrap();
        assert_eq!(read(&r, BLOB_CONFIG).unwrap().unwrap(), b"second, longer");
        assert_eq!(read(&r, BLOB_HEALTH).unwrap().unwrap(), b"hostname x\n");
        assert!(matches!(write(&r, BLOB_CONFIG, &vec![0; BLOB_CAP as usize + 1]), Err(BlobError::TooLarge { .. })));
    }

    #[test]
    fn a_corrupted_blob_is_an_error() {
        let (r, _opts, _d) = region("blob-bad");
        write(&r, BLOB_CONFIG, b"payload").unwrap();
        // Flip a byte of the current half (half 0 after one write).
        let mut b = [0u8; 1];
        r.raw_read(T_BLOB_DATA, 0, 2, &mut b).unwrap();
        r.raw_write(T_BLOB_DATA, 0, 2, &[b[0] ^ 0xff]).unwrap();
        assert!(matches!(read(&r, BLOB_CONFIG), Err(BlobError::Checksum { .. })));
    }
}
