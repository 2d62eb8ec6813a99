//! The binding cache in the state region, one record per binding: a change of the cache
//! rewrites only the records of the bindings (and drop fractions) that changed, found by an
//! in-memory comparison with the last saved copy (no serialization of the whole cache). Each record is crash-atomic on its own, and a primitive
//! changes one binding or one drop fraction, so a crash leaves every binding as it was before
//! or after its last change.

use std::collections::HashMap;

use acm::{BindingKey, ServiceKey};
use restart::region::{AccessError, Region};

use super::binding_records::{BindingRec, DropRec, Saved};
use super::layout::{T_BINDING, T_DROP};
use crate::cm::cache::{Cache, CacheImage, Entry};

/// Why the kept cache cannot be used or written.
#[derive(Debug, thiserror::Error)]
pub enum BindingsError {
    /// A record is corrupted or does not decode.
    #[error("binding cache record: {0}")]
    Access(#[from] AccessError),
    /// More bindings (or drop fractions) than slots.
    #[error("the state region has room for {0} bindings / drop fractions; the cache has more")]
    Full(u32),
}

/// Keeps the region's binding records equal to the cache.
#[derive(Debug)]
pub struct Persister {
    region: Region,
    bindings: HashMap<BindingKey, (u32, Saved)>,
    free: Vec<u32>,
    drops: HashMap<ServiceKey, (u32, u64)>,
    drop_free: Vec<u32>,
}

impl Persister {
    /// Reads the kept cache (a restarted generation) and a persister over it.
    pub fn load(region: &Region) -> Result<(Persister, CacheImage), BindingsError> {
        let mut p = Persister {
            region: region.clone(),
            bindings: HashMap::new(),
            free: Vec::new(),
            drops: HashMap::new(),
            drop_free: Vec::new(),
        };
        let mut img = CacheImage { bindings: Vec::new(), drops: Vec::new(), generation: 0 };
        for slot in (0..region.count(T_BINDING)?).rev() {
            match region.read::<BindingRec>(T_BINDING, slot)?.and_then(|r| r.binding) {
                Some((k, s)) if !p.bindings.contains_key(&k) => {
                    p.bindings.insert(k, (slot, s));
                    img.bindings.push((
                        k,
                        Entry { params: s.params, state: s.state, pushed: s.pushed, counters: Default::default() },
                    ));
                }
                _ => p.free.push(slot),
            }
        }
        for slot in (0..region.count(T_DROP)?).rev() {
            match region.read::<DropRec>(T_DROP, slot)?.and_then(|r| r.drop) {
                Some((s, f)) if !p.drops.contains_key(&s) => {
                    p.drops.insert(s, (slot, f.get().to_bits()));
                    img.drops.push((s, f));
                }
                _ => p.drop_free.push(slot),
            }
        }
        img.generation = img.bindings.len() as u64 + 1;
        Ok((p, img))
    }

    /// A persister over an empty region (cold start).
    pub fn fresh(region: &Region) -> Result<Persister, BindingsError> {
        Ok(Persister {
            region: region.clone(),
            bindings: HashMap::new(),
            free: (0..region.count(T_BINDING)?).rev().collect(),
            drops: HashMap::new(),
            drop_free: (0..region.count(T_DROP)?).rev().collect(),
        })
    }

    /// A persister over a region whose records may be stale (a recovery that failed): every
    /// slot is cleared first.
    pub fn cleared(region: &Region) -> Result<Persister, BindingsError> {
        let p = Self::fresh(region)?;
        for slot in 0..region.count(T_BINDING)? {
            region.write(T_BINDING, slot, &BindingRec::default())?;
        }
        for slot in 0..region.count(T_DROP)? {
            region.write(T_DROP, slot, &DropRec::default())?;
        }
        Ok(p)
    }

    /// Brings the records in line with `cache`: writes what changed, frees what went.
    pub fn sync(&mut self, cache: &Cache) -> Result<(), BindingsError> {
        for (k, e) in cache.entries() {
            let s = Saved::of(e);
            let slot = match self.bindings.get(k) {
                Some((_, old)) if *old == s => continue,
                Some((slot, _)) => *slot,
                None => self.free.pop().ok_or(BindingsError::Full(self.region.count(T_BINDING)?))?,
            };
            self.region.write(T_BINDING, slot, &BindingRec { binding: Some((*k, s)) })?;
            self.bindings.insert(*k, (slot, s));
        }
        if self.bindings.len() > cache.len() {
            let gone: Vec<BindingKey> = self.bindings.keys().filter(|k| cache.get(k).is_none()).copied().collect();
            for k in gone {
                if let Some((slot, _)) = self.bindings.remove(&k) {
                    self.region.write(T_BINDING, slot, &BindingRec::default())?;
                    self.free.push(slot);
                }
            }
        }
        let mut n = 0;
        for (s, f) in cache.drop_entries() {
            n += 1;
            let bits = f.get().to_bits();
            let slot = match self.drops.get(s) {
                Some((_, old)) if *old == bits => continue,
                Some((slot, _)) => *slot,
                None => self.drop_free.pop().ok_or(BindingsError::Full(self.region.count(T_DROP)?))?,
            };
            self.region.write(T_DROP, slot, &DropRec { drop: Some((*s, *f)) })?;
            self.drops.insert(*s, (slot, bits));
        }
        if self.drops.len() > n {
            let kept: std::collections::HashSet<ServiceKey> = cache.drop_entries().map(|(s, _)| *s).collect();
            let gone: Vec<ServiceKey> = self.drops.keys().filter(|s| !kept.contains(s)).copied().collect();
            for s in gone {
                if let Some((slot, _)) = self.drops.remove(&s) {
                    self.region.write(T_DROP, slot, &DropRec::default())?;
                    self.drop_free.push(slot);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::cm::cache::{CachePolicy, Pushed};
    use crate::zlr::layout::layout;
    use acm::{BindingParams, BindingState, DropFraction, Primitive, Proto, RealServer};
    use restart::region::record::{Reader, Record, Writer};
    use restart::region::RegionOptions;

    fn key(i: u8) -> BindingKey {
        BindingKey {
            service: ServiceKey { vip: Ipv4Addr::new(10, 0, 0, 100), proto: Proto::Tcp, vport: 80 },
            real: RealServer { rip: Ipv4Addr::new(10, 0, 1, i), rport: 80 },
        }
    }

    #[test]
    fn the_region_follows_the_cache_and_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RegionOptions { hugetlbfs: dir.path().join("none"), shm: dir.path().to_path_buf() };
        let region = Region::create("bindings-test", &layout(2), &opts).unwrap();
        let mut p = Persister::fresh(&region).unwrap();
        let mut cache = Cache::new(CachePolicy::default());
        for i in 1..=5 {
            cache
                .plan(&Primitive::Add {
                    key: key(i),
                    params: BindingParams { weight: u32::from(i), source_nat: i == 2 },
                })
                .unwrap();
            p.sync(&cache).unwrap();
        }
        cache.plan(&Primitive::Remove { key: key(3) }).unwrap();
        cache.plan(&Primitive::ForceRemove { key: key(4) }).unwrap();
        let fraction = DropFraction::new(0.25).unwrap();
        cache.plan(&Primitive::Drop { service: key(1).service, fraction }).unwrap();
        p.sync(&cache).unwrap();
        drop(p);
        let region = Region::open("bindings-test", &layout(2), &opts).unwrap();
        let (_, img) = Persister::load(&region).unwrap();
        let mut want = cache.image();
        want.bindings.iter_mut().for_each(|(_, e)| e.counters = Default::default());
        let mut got = img.bindings.clone();
        got.sort_by_key(|(k, _)| *k);
        assert_eq!(got, want.bindings);
        assert_eq!(img.drops, want.drops);
    }

    #[test]
    fn bad_records_are_errors() {
        let mut buf = [0u8; BindingRec::SIZE];
        BindingRec {
            binding: Some((
                key(1),
                Saved { params: BindingParams::default(), state: BindingState::Active, pushed: Pushed::Absent },
            )),
        }
        .encode(&mut Writer::new(&mut buf));
        let good = buf;
        for (at, v) in [(0, 7u8), (1, 99), (2, 0), (3, 9), (4, 2)] {
            let mut b = good;
            b[at] = v;
            assert!(BindingRec::decode(&mut Reader::new(&b)).is_err(), "byte {at} = {v}");
        }
        let mut b = [0u8; DropRec::SIZE];
        DropRec { drop: Some((key(1).service, DropFraction::new(0.5).unwrap())) }.encode(&mut Writer::new(&mut b));
        b[8..16].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
        assert!(DropRec::decode(&mut Reader::new(&b)).is_err());
    }
}
