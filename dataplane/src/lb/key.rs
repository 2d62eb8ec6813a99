//! Flow keys and the hashes of them.
//!
//! The 13 bytes of a [`FlowKey`] are packed into two words and mixed with folded 64×64→128-bit
//! multiplies (three multiplies, two of them independent), keyed by a seed expanded to four
//! words. [`flow_hash`] (which real server) and [`client_hash`] (which worker) use fixed seeds,
//! because their values must agree across workers, restarts and builds; the flow table's index
//! uses a per-table seed.

use std::net::Ipv4Addr;

/// The fixed seed of [`flow_hash`]. Changing it remaps every flow to other real servers; it is
/// part of the dataplane's compatibility contract across restarts and workers.
pub const FLOW_HASH_SEED: u64 = 0x6c62_2d6d_6167_6c76; // "lb-maglv"

/// The fixed seed of [`client_hash`].
const CLIENT_HASH_SEED: u64 = 0x6c62_2d63_6c69_656e; // "lb-clien"

/// A flow's identity as seen in one direction: the IPv4 5-tuple of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Source port (host order; 0 for protocols without ports).
    pub sport: u16,
    /// Destination port (host order; 0 for protocols without ports).
    pub dport: u16,
    /// IP protocol number (6 TCP, 17 UDP, ...).
    pub proto: u8,
}

impl FlowKey {
    /// A key from `src:sport → dst:dport` over `proto`.
    pub const fn new(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, proto: u8) -> Self {
        FlowKey { src, dst, sport, dport, proto }
    }

    /// The same 5-tuple seen from the other end (`dst:dport → src:sport`).
    pub const fn reversed(&self) -> Self {
        FlowKey { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, proto: self.proto }
    }

    /// The 13 bytes as two words.
    #[inline]
    pub(super) fn words(&self) -> (u64, u64) {
        let a = u64::from(u32::from(self.src)) << 32 | u64::from(u32::from(self.dst));
        let b = u64::from(self.sport) << 24 | u64::from(self.dport) << 8 | u64::from(self.proto);
        (a, b)
    }
}

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The four words a hash seed expands to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Seeds([u64; 4]);

impl Seeds {
    pub(super) const fn new(seed: u64) -> Self {
        // splitmix64 steps: distinct, well mixed words from any seed (including 0).
        let mut s = [0u64; 4];
        let mut x = seed;
        let mut i = 0;
        while i < 4 {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            s[i] = z ^ (z >> 31);
            i += 1;
        }
        Seeds(s)
    }

    #[inline]
    pub(super) fn hash(&self, a: u64, b: u64) -> u64 {
        let [s0, s1, s2, s3] = self.0;
        let x = fold_mul(a ^ s0, 0x9e37_79b9_7f4a_7c15 ^ s1);
        let y = fold_mul(b ^ s1, 0xc2b2_ae3d_27d4_eb4f ^ s0);
        fold_mul(x ^ s2, y ^ s3)
    }
}

const FLOW_SEEDS: Seeds = Seeds::new(FLOW_HASH_SEED);
const CLIENT_SEEDS: Seeds = Seeds::new(CLIENT_HASH_SEED);

/// The hash to pick a real server with ([`super::Maglev::lookup`]): a fixed-seed hash of the
/// whole 5-tuple, identical on every worker, every restart and every build of the dataplane
/// (see [`FLOW_HASH_SEED`]). Well mixed in all 64 bits.
#[inline]
pub fn flow_hash(key: &FlowKey) -> u64 {
    let (a, b) = key.words();
    FLOW_SEEDS.hash(a, b)
}

/// A fixed-seed hash of a client address and port, for steering a client's packets to a
/// worker (e.g. `client_hash(ip, port) % workers`, or the multiply-shift of
/// [`super::Maglev::slot`]). Stable like [`flow_hash`].
#[inline]
pub fn client_hash(ip: Ipv4Addr, port: u16) -> u64 {
    CLIENT_SEEDS.hash(u64::from(u32::from(ip)), u64::from(port))
}
