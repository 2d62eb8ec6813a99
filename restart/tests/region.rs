//! State regions: crash-atomic records, layout versions, adoption by a new generation.

mod common;

use restart::region::record::{Reader, Record, RecordError, Writer};
use restart::region::{AccessError, Backing, LayoutSpec, OpenError, Region, RegionOptions, TableKind};

#[derive(Debug, Clone, PartialEq)]
struct Conn {
    stage: u8,
    sent: u64,
    path: Vec<u8>,
}

impl Record for Conn {
    const SIZE: usize = 1 + 8 + 2 + 64;
    fn encode(&self, w: &mut Writer<'_>) {
        w.u8(self.stage);
        w.u64(self.sent);
        w.str_field(&self.path, 64);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        Ok(Conn { stage: r.u8()?, sent: r.u64()?, path: r.str_field(64)?.to_vec() })
    }
}

fn layout(version: u32) -> LayoutSpec {
    LayoutSpec {
        name: "test-app".into(),
        version,
        tables: vec![(1, TableKind::Records, Conn::SIZE as u32, 100), (2, TableKind::Raw, 8192, 4)],
    }
}

#[test]
fn create_write_reopen_on_hugetlbfs() {
    if !common::hugetlbfs_or_skip("create_write_reopen_on_hugetlbfs") {
        return;
    }
    let name = common::unique("rt-huge");
    let opts = RegionOptions::default();
    let r = Region::create(&name, &layout(1), &opts).unwrap();
    assert_eq!(r.backing(), Backing::HugeTlb);
    assert_eq!(r.header().total_len % (2 << 20), 0);
    assert_eq!(r.generation(), 1);
    let c = Conn { stage: 2, sent: 3_000_000, path: b"/big.bin".to_vec() };
    r.write(1, 7, &c).unwrap();
    r.write(1, 7, &Conn { sent: 3_000_100, ..c.clone() }).unwrap();
    r.raw_write(2, 1, 100, b"held bytes").unwrap();
    drop(r);
    let r = Region::open(&name, &layout(1), &opts).unwrap();
    r.set_generation(2);
    assert_eq!(r.read::<Conn>(1, 7).unwrap().unwrap().sent, 3_000_100);
    assert_eq!(r.read::<Conn>(1, 8).unwrap(), None);
    let mut b = [0u8; 10];
    r.raw_read(2, 1, 100, &mut b).unwrap();
    assert_eq!(&b, b"held bytes");
    assert_eq!(Region::open(&name, &layout(1), &opts).unwrap().generation(), 2);
    assert!(matches!(r.read::<Conn>(1, 100), Err(AccessError::Index { .. })));
    Region::remove(&name, &opts);
}

#[test]
fn falls_back_to_shm_when_hugetlbfs_missing() {
    let name = common::unique("rt-shm");
    let opts = RegionOptions { hugetlbfs: "/nonexistent-hugetlbfs".into(), ..RegionOptions::default() };
    let r = Region::create(&name, &layout(1), &opts).unwrap();
    assert_eq!(r.backing(), Backing::Shm);
    assert!(r.path().starts_with("/dev/shm"));
    r.write(1, 0, &Conn { stage: 1, sent: 5, path: vec![] }).unwrap();
    drop(r);
    let r = Region::open(&name, &layout(1), &opts).unwrap();
    assert_eq!(r.read::<Conn>(1, 0).unwrap().unwrap().sent, 5);
    Region::remove(&name, &opts);
}

#[test]
fn other_layout_version_is_refused() {
    let name = common::unique("rt-ver");
    let opts = RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() };
    Region::create(&name, &layout(1), &opts).unwrap();
    let e = Region::open(&name, &layout(2), &opts).unwrap_err();
    assert!(matches!(e, OpenError::LayoutVersion { found: 1, expected: 2, .. }), "{e}");
    assert!(e.to_string().contains("incompatible layout"), "{e}");
    let other = LayoutSpec { name: "other".into(), ..layout(1) };
    assert!(matches!(Region::open(&name, &other, &opts), Err(OpenError::LayoutName { .. })));
    let mut changed = layout(1);
    changed.tables[0].3 = 50;
    assert!(matches!(Region::open(&name, &changed, &opts), Err(OpenError::LayoutMismatch { .. })));
    Region::remove(&name, &opts);
}

#[test]
fn corrupted_and_truncated_regions_are_refused() {
    let opts = RegionOptions { hugetlbfs: "/nonexistent".into(), ..RegionOptions::default() };
    let name = common::unique("rt-corrupt");
    let r = Region::create(&name, &layout(1), &opts).unwrap();
    let path = r.path().to_path_buf();
    r.write(1, 3, &Conn { stage: 1, sent: 1, path: vec![] }).unwrap();
    r.write(1, 3, &Conn { stage: 1, sent: 2, path: vec![] }).unwrap();
    // Corrupt both copies of slot 3.
    let t = r.header().tables[0];
    let off = (t.offset + t.stride() * 3) as usize;
    r.poke(off + 20, &[0xff; 4]);
    r.poke(off + 20 + (t.stride() as usize) / 2, &[0xff; 4]);
    assert!(matches!(r.read::<Conn>(1, 3), Err(AccessError::Slot { .. })));
    // Corrupt the header.
    r.poke(60, &[7]);
    drop(r);
    let e = Region::open(&name, &layout(1), &opts).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // Truncated file.
    let name2 = common::unique("rt-trunc");
    let r = Region::create(&name2, &layout(1), &opts).unwrap();
    let p2 = r.path().to_path_buf();
    drop(r);
    let f = std::fs::OpenOptions::new().write(true).open(&p2).unwrap();
    f.set_len(8192).unwrap();
    assert!(matches!(Region::open(&name2, &layout(1), &opts), Err(OpenError::Truncated { found: 8192, .. })));
    f.set_len(100).unwrap();
    assert!(matches!(Region::open(&name2, &layout(1), &opts), Err(OpenError::Parse { .. })));
    // Garbage file.
    std::fs::write(&p2, vec![0x41u8; 10000]).unwrap();
    let e = Region::open(&name2, &layout(1), &opts).unwrap_err();
    assert!(e.to_string().contains("bad magic"), "{e}");
    assert!(matches!(Region::open("missing-region-xyz", &layout(1), &opts), Err(OpenError::NotFound(_))));
    assert!(matches!(Region::open("../etc", &layout(1), &opts), Err(OpenError::InvalidName(_))));
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(p2);
}
