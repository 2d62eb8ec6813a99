//! Unit and property tests of [`super::Maglev`].

use super::*;
use proptest::prelude::*;

fn equal(n: u32) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend { id: i, key: u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xabcdef, weight: 1 })
        .collect()
}

/// The plain Maglev walk (no tail phase, `%` arithmetic): the reference the fast build must
/// reproduce exactly.
fn reference(backends: &[Backend], m: usize) -> Vec<u32> {
    let mut ws: Vec<&Backend> = backends.iter().filter(|b| b.weight > 0).collect();
    ws.sort_by_key(|b| (b.key, b.id));
    if ws.is_empty() {
        return Vec::new();
    }
    let m64 = m as u64;
    let total: u64 = ws.iter().map(|b| u64::from(b.weight)).sum();
    let quantum = (total / ws.len() as u64).max(1);
    let offs: Vec<u64> = ws.iter().map(|b| mix64(b.key ^ 0x243f_6a88_85a3_08d3) % m64).collect();
    let skips: Vec<u64> = ws.iter().map(|b| mix64(b.key ^ 0x1319_8a2e_0370_7344) % (m64 - 1) + 1).collect();
    let mut j = vec![0u64; ws.len()];
    let mut credit = vec![0u64; ws.len()];
    let mut table = vec![u32::MAX; m];
    let mut filled = 0;
    'outer: loop {
        for (i, b) in ws.iter().enumerate() {
            credit[i] += u64::from(b.weight);
            while credit[i] >= quantum {
                credit[i] -= quantum;
                loop {
                    let s = ((offs[i] + j[i] * skips[i]) % m64) as usize;
                    j[i] += 1;
                    if table[s] == u32::MAX {
                        table[s] = b.id;
                        break;
                    }
                }
                filled += 1;
                if filled == m {
                    break 'outer;
                }
            }
        }
    }
    table
}

fn shares(t: &Maglev, ids: impl Iterator<Item = u32>) -> Vec<usize> {
    let mut counts = vec![0usize; 2048];
    for &e in t.entries() {
        counts[e as usize] += 1;
    }
    ids.map(|i| counts[i as usize]).collect()
}

#[test]
fn primes() {
    let small: Vec<usize> = (0..40).filter(|&n| is_prime(n)).collect();
    assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
    assert!(is_prime(65_537));
    assert!(!is_prime(65_536));
    assert!(!is_prime(65_539 * 3));
    assert!(is_prime(655_373));
    assert!(!is_prime(25));
    assert!(!is_prime(49));
}

#[test]
fn errors() {
    let b = equal(3);
    assert_eq!(Maglev::build(&b, 65_536), Err(MaglevError::NotPrime(65_536)));
    assert_eq!(Maglev::build(&b, 1), Err(MaglevError::NotPrime(1)));
    assert_eq!(Maglev::build(&b, 3), Err(MaglevError::TooManyBackends { table_size: 3, backends: 3 }));
    assert!(matches!(Maglev::build(&b, MAX_TABLE_SIZE + 1), Err(MaglevError::TooLarge(_))));
    assert!(Maglev::build(&b, 5).is_ok());
}

#[test]
fn empty_and_single() {
    let t = Maglev::build(&[], DEFAULT_TABLE_SIZE).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.lookup(12345), None);
    assert_eq!(t.table_size(), DEFAULT_TABLE_SIZE);
    let zero = [Backend { id: 1, key: 7, weight: 0 }];
    let t = Maglev::build(&zero, DEFAULT_TABLE_SIZE).unwrap();
    assert!(t.is_empty());
    assert_eq!(t.lookup(u64::MAX), None);
    let one = [Backend { id: 42, key: 7, weight: 3 }];
    let t = Maglev::build(&one, DEFAULT_TABLE_SIZE).unwrap();
    assert!(t.entries().iter().all(|&e| e == 42));
    for h in [0, 1, u64::MAX, 1 << 63] {
        assert_eq!(t.lookup(h), Some(42));
    }
}

#[test]
fn lookup_covers_every_slot_range() {
    let t = Maglev::build(&equal(3), 7).unwrap();
    assert_eq!(t.slot(0), 0);
    assert_eq!(t.slot(u64::MAX), 6);
    assert_eq!(t.lookup(u64::MAX), Some(t.entries()[6]));
}

#[test]
fn even_shares() {
    for n in [3u32, 10, 100] {
        let t = Maglev::build(&equal(n), DEFAULT_TABLE_SIZE).unwrap();
        let s = shares(&t, 0..n);
        let (min, max) = (*s.iter().min().unwrap(), *s.iter().max().unwrap());
        assert!(max - min <= 1, "n={n}: min {min} max {max}");
        let even = DEFAULT_TABLE_SIZE as f64 / f64::from(n);
        for &c in &s {
            assert!((c as f64 - even).abs() <= 0.01 * even, "n={n}: {c} vs {even}");
        }
    }
}

#[test]
fn weighted_shares() {
    let mut b = equal(3);
    for (i, w) in [1, 2, 3].into_iter().enumerate() {
        b[i].weight = w;
    }
    let t = Maglev::build(&b, DEFAULT_TABLE_SIZE).unwrap();
    let s = shares(&t, 0..3);
    for (i, want) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0].into_iter().enumerate() {
        let got = s[i] as f64 / DEFAULT_TABLE_SIZE as f64;
        assert!((got - want).abs() <= 0.01, "backend {i}: {got} vs {want}");
    }
    // A skewed mix: one heavy backend among many light ones.
    let mut b = equal(50);
    b[7].weight = 100;
    let t = Maglev::build(&b, DEFAULT_TABLE_SIZE).unwrap();
    let s = shares(&t, 0..50);
    let heavy = s[7] as f64 / DEFAULT_TABLE_SIZE as f64;
    assert!((heavy - 100.0 / 149.0).abs() <= 0.01, "heavy share {heavy}");
}

#[test]
fn order_independent() {
    let mut b = equal(20);
    let t1 = Maglev::build(&b, 251).unwrap();
    b.reverse();
    let t2 = Maglev::build(&b, 251).unwrap();
    assert_eq!(t1, t2);
}

#[test]
fn removal_disruption() {
    for n in [3u32, 10, 100] {
        let b = equal(n);
        let old = Maglev::build(&b, DEFAULT_TABLE_SIZE).unwrap();
        let removed = n / 2;
        let rest: Vec<Backend> = b.iter().copied().filter(|x| x.id != removed).collect();
        let new = Maglev::build(&rest, DEFAULT_TABLE_SIZE).unwrap();
        let extra = old.entries().iter().zip(new.entries()).filter(|(o, nw)| o != nw && **o != removed).count() as f64
            / DEFAULT_TABLE_SIZE as f64;
        let bound = 1.0 / f64::from(n) + 0.01;
        assert!(extra <= bound, "n={n}: extra disruption {extra} > {bound}");
        // The removed backend's own entries all moved.
        assert_eq!(new.entry_count(removed), 0);
        assert!(disruption(&old, &new) >= 1.0 / f64::from(n) * 0.98);
    }
}

#[test]
fn addition_disruption() {
    for n in [3u32, 10, 100] {
        let b = equal(n + 1);
        let old = Maglev::build(&b[..n as usize], DEFAULT_TABLE_SIZE).unwrap();
        let new = Maglev::build(&b, DEFAULT_TABLE_SIZE).unwrap();
        // Entries that moved to anyone but the newcomer.
        let extra = old.entries().iter().zip(new.entries()).filter(|(o, nw)| o != nw && **nw != n).count() as f64
            / DEFAULT_TABLE_SIZE as f64;
        let bound = 1.0 / f64::from(n + 1) + 0.01;
        assert!(extra <= bound, "n={n}: extra disruption {extra} > {bound}");
        let share = new.entry_count(n) as f64 / DEFAULT_TABLE_SIZE as f64;
        assert!((share - 1.0 / f64::from(n + 1)).abs() <= 0.01 / f64::from(n + 1) + 1e-4);
    }
}

#[test]
fn extreme_weights() {
    let mut b = equal(1000);
    b[500].weight = u32::MAX;
    let t = Maglev::build(&b, DEFAULT_TABLE_SIZE).unwrap();
    assert!(t.entry_count(500) >= DEFAULT_TABLE_SIZE - 2);
    let mut b = equal(4);
    for x in &mut b {
        x.weight = u32::MAX;
    }
    let t = Maglev::build(&b, 101).unwrap();
    let s = shares(&t, 0..4);
    assert!(s.iter().all(|&c| (25..=26).contains(&c)), "{s:?}");
}

#[test]
fn disruption_helper() {
    let a = Maglev::build(&equal(4), 13).unwrap();
    assert_eq!(disruption(&a, &a), 0.0);
    let b = Maglev::build(&equal(4), 17).unwrap();
    assert_eq!(disruption(&a, &b), 1.0);
    let e = Maglev::build(&[], 13).unwrap();
    assert_eq!(disruption(&e, &e), 0.0);
    assert_eq!(disruption(&a, &e), 1.0);
}

#[test]
fn matches_reference_walk() {
    for (n, m) in [(1u32, 7usize), (3, 13), (10, 251), (100, 65_537), (1000, 65_537)] {
        let b = equal(n);
        let t = Maglev::build(&b, m).unwrap();
        assert_eq!(t.entries(), &reference(&b, m)[..], "n={n} m={m}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prop_matches_reference(
        ws in proptest::collection::vec((any::<u64>(), 0u32..6), 1..12),
        mi in 0usize..4,
    ) {
        let m = [5usize, 31, 1009, 4099][mi];
        prop_assume!(ws.len() < m);
        let b: Vec<Backend> = ws.iter().enumerate()
            .map(|(i, &(key, weight))| Backend { id: i as u32, key, weight })
            .collect();
        let t = Maglev::build(&b, m).unwrap();
        prop_assert_eq!(t.entries(), &reference(&b, m)[..]);
        for (i, x) in b.iter().enumerate() {
            if x.weight == 0 {
                prop_assert_eq!(t.entry_count(i as u32), 0);
            }
        }
    }
}

#[test]
fn adaptive_size_grows_at_once_and_shrinks_with_hysteresis() {
    use super::{adaptive_size, SIZE_STEPS};
    // Every step is a valid Maglev size.
    for s in SIZE_STEPS {
        assert!(is_prime(s), "{s}");
    }
    // 3 backends: 9000 entries wanted → 16067; a fresh service starts there.
    assert_eq!(adaptive_size(3, 0, 65537), 16067);
    // Grows as soon as the table is too small; 32141 is within 4× of the cap: the cap.
    assert_eq!(adaptive_size(6, 16067, 65537), 65537);
    // Shrinks only when more than eight times too large.
    assert_eq!(adaptive_size(5, 65537, 65537), 65537);
    assert_eq!(adaptive_size(3, 65537, 65537), 65537);
    assert_eq!(adaptive_size(2, 65537, 65537), 8039);
    assert_eq!(adaptive_size(1, 8039, 65537), 8039);
    // 10 backends: the cap; removing one keeps the size (disruption stays minimal).
    let s = adaptive_size(10, 0, 65537);
    assert_eq!(s, 65537);
    assert_eq!(adaptive_size(9, s, 65537), s);
    assert_eq!(adaptive_size(100, 0, 65537), 65537);
    assert_eq!(adaptive_size(1000, 0, 65537), 65537);
    assert_eq!(adaptive_size(100, 0, 4099), 4099);
    // A lowered cap is obeyed at once.
    assert_eq!(adaptive_size(1, 16067, 4099), 4099);
    assert_eq!(adaptive_size(1, 65537, 100_003), 4019);
}

#[test]
fn adaptive_sizes_keep_removal_disruption_within_one_percent_of_ideal() {
    use super::adaptive_size;
    // Mean over several random backend sets: removing one of N moves at most 1/N + 1%.
    let mut seed = 0x5eed_1234_abcd_0001u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in [2usize, 3, 5, 10, 20, 50] {
        let m = adaptive_size(n, 0, DEFAULT_TABLE_SIZE);
        assert_eq!(adaptive_size(n - 1, m, DEFAULT_TABLE_SIZE), m, "removing one keeps the size");
        let trials = 4;
        let mut sum = 0.0;
        for _ in 0..trials {
            let b: Vec<Backend> = (0..n as u32).map(|id| Backend { id, key: rnd(), weight: 1 }).collect();
            let gone = (rnd() % n as u64) as u32;
            let rest: Vec<Backend> = b.iter().copied().filter(|x| x.id != gone).collect();
            sum += disruption(&Maglev::build(&b, m).unwrap(), &Maglev::build(&rest, m).unwrap());
        }
        let mean = sum / f64::from(trials);
        let bound = 1.0 / n as f64 + 0.01;
        assert!(mean <= bound, "N={n} M={m}: mean disruption {mean:.4} > {bound:.4}");
    }
}

#[test]
fn adaptive_size_always_builds() {
    use super::adaptive_size;
    let mut cur = 0;
    for n in [0usize, 1, 2, 3, 10, 50, 100, 101, 300, 650, 651, 200, 20, 2, 1, 0] {
        cur = adaptive_size(n, cur, DEFAULT_TABLE_SIZE);
        assert!(cur > n && is_prime(cur) && cur <= DEFAULT_TABLE_SIZE, "{n} → {cur}");
        let backends: Vec<Backend> =
            (0..n as u32).map(|i| Backend { id: i, key: u64::from(i) * 7919, weight: 1 }).collect();
        Maglev::build(&backends, cur).unwrap();
    }
}

/// Places `flows` hashes with `pick` and counts them per id.
fn placed(flows: u64, pick: impl Fn(u64) -> Option<u32>) -> std::collections::BTreeMap<u32, u64> {
    let mut m = std::collections::BTreeMap::new();
    for i in 0..flows {
        let h = mix64(i ^ 0x0123_4567_89ab_cdef);
        *m.entry(pick(h).expect("a live backend")).or_insert(0) += 1;
    }
    m
}

#[test]
fn interim_is_none_when_the_table_is_exact() {
    let b = equal(5);
    assert_eq!(Interim::between(&b, &b), None);
    // A weight change keeps the members: no correction (a build will follow).
    let mut w = b.clone();
    w[2].weight = 7;
    assert_eq!(Interim::between(&b, &w), None);
    // Order does not matter.
    let mut r = b.clone();
    r.reverse();
    assert_eq!(Interim::between(&b, &r), None);
}

#[test]
fn interim_drain_moves_only_the_drained_backends_flows() {
    let b = equal(10);
    let table = Maglev::build(&b, 32141).unwrap();
    let rest: Vec<Backend> = b.iter().copied().filter(|x| x.id != 4).collect();
    let i = Interim::between(&b, &rest).unwrap();
    assert_eq!(i.gone(), &[4]);
    assert!(i.added().is_empty());
    let flows = 200_000;
    let mut moved = 0;
    for k in 0..flows {
        let h = mix64(k ^ 0x0123_4567_89ab_cdef);
        let (before, now) = (table.lookup(h).unwrap(), i.lookup(&table, h).unwrap());
        assert_ne!(now, 4, "a drained backend gets no new flow");
        if before != now {
            assert_eq!(before, 4, "only the drained backend's flows move");
            moved += 1;
        }
    }
    // Exactly its share moved (minimal disruption), spread evenly over the other nine.
    let share = moved as f64 / flows as f64;
    assert!((share - 0.1).abs() < 0.01, "{share}");
    let counts = placed(flows, |h| i.lookup(&table, h));
    for (&id, &c) in &counts {
        assert!((c as f64 / flows as f64 - 1.0 / 9.0).abs() < 0.01, "id {id}: {c}");
    }
}

#[test]
fn interim_add_gives_the_newcomer_its_share_at_once() {
    let b = equal(4);
    let table = Maglev::build(&b[..3], 16067).unwrap();
    let i = Interim::between(&b[..3], &b).unwrap();
    assert_eq!(i.added(), &[3]);
    let flows = 200_000;
    let counts = placed(flows, |h| i.lookup(&table, h));
    for id in 0..4 {
        let share = counts[&id] as f64 / flows as f64;
        assert!((share - 0.25).abs() < 0.01, "id {id}: {share}");
    }
    // Flows that stay with an old backend stay with the same one.
    for k in 0..10_000u64 {
        let h = mix64(k);
        let now = i.lookup(&table, h).unwrap();
        if now != 3 {
            assert_eq!(Some(now), table.lookup(h));
        }
    }
}

#[test]
fn interim_of_an_empty_table_and_of_no_backend() {
    let b = equal(3);
    let empty = Maglev::build(&[], 4019).unwrap();
    let i = Interim::between(&[], &b).unwrap();
    let counts = placed(30_000, |h| i.lookup(&empty, h));
    assert_eq!(counts.len(), 3);
    // Every backend gone: no backend for any flow.
    let table = Maglev::build(&b, 4019).unwrap();
    let none = Interim::between(&b, &[]).unwrap();
    assert_eq!(none.lookup(&table, 12345), None);
    // Weight 0 counts as gone.
    let mut z = b.clone();
    z[0].weight = 0;
    let i = Interim::between(&b, &z).unwrap();
    assert_eq!(i.gone(), &[0]);
    assert!(!placed(30_000, |h| i.lookup(&table, h)).contains_key(&0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Whatever joined or left (including a slot id reused for another server), an interim
    /// places every flow on a live backend, and only there.
    #[test]
    fn prop_interim_places_only_on_live_backends(
        old in proptest::collection::vec((0u32..24, 0u64..4, 0u32..3), 0..12),
        new in proptest::collection::vec((0u32..24, 0u64..4, 0u32..3), 0..12),
        hashes in proptest::collection::vec(any::<u64>(), 64),
    ) {
        let mk = |v: &[(u32, u64, u32)]| {
            let mut seen = std::collections::BTreeSet::new();
            v.iter().filter(|(id, _, _)| seen.insert(*id))
                .map(|&(id, key, weight)| Backend { id, key: key * 1_000_003 + 17, weight })
                .collect::<Vec<_>>()
        };
        let (old, new) = (mk(&old), mk(&new));
        let table = Maglev::build(&old, 251).unwrap();
        let live: std::collections::BTreeSet<(u32, u64)> =
            new.iter().filter(|b| b.weight > 0).map(|b| (b.id, b.key)).collect();
        let live_ids: std::collections::BTreeSet<u32> = live.iter().map(|m| m.0).collect();
        match Interim::between(&old, &new) {
            None => {
                let was: std::collections::BTreeSet<(u32, u64)> =
                    old.iter().filter(|b| b.weight > 0).map(|b| (b.id, b.key)).collect();
                prop_assert_eq!(was, live);
            }
            Some(i) => {
                for h in hashes {
                    match i.lookup(&table, h) {
                        None => prop_assert!(live.is_empty()),
                        Some(id) => {
                            prop_assert!(live_ids.contains(&id));
                            // A reused id whose server changed is never reached through the old table.
                            if i.gone().contains(&id) {
                                prop_assert!(i.added().contains(&id));
                            }
                        }
                    }
                }
            }
        }
    }
}
