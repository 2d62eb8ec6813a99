//! The beacon wire format: what CM client modules and CMs send each other over UDP.
//!
//! Every datagram is one authenticated [`Envelope`]:
//!
//! ```text
//!  0      4   5    6      8        12         20     28           36    37         37+n
//!  +------+---+----+------+--------+----------+------+------------+-----+----------+------+-----+
//!  | ACMB |ver|kind|flags |sender  | instance | seq  | time (ms)  | n   | profile  | body | tag |
//!  +------+---+----+------+--------+----------+------+------------+-----+----------+------+-----+
//!                          IPv4     u64        u64    unix ms      u8    n bytes            32 B
//! ```
//!
//! All integers are big-endian. `tag` is HMAC-SHA256, keyed with the switch profile's key
//! (named by `profile`), over every byte before it. [`decode`] checks the tag before it looks at
//! the body, so an unauthenticated datagram is never parsed further.
//!
//! Bodies:
//!
//! | kind | body |
//! |---|---|
//! | 1 beacon | `interval_ms u32`, `count u16`, `count` × entry — the sender's whole binding list |
//! | 2 remove | `count u16`, entries — clean removal (drain) |
//! | 3 report | `count u16`, entries — these bindings are failed (VIP 0.0.0.0 and vport 0: every binding of the real server) |
//! | 4 heartbeat | `cm_id u64`, `role u8`, `interval_ms u32`, `generation u64`, `bindings u32` |
//!
//! An entry is 18 bytes: `vip[4] proto u8 vport u16 rip[4] rport u16 weight u32 flags u8`
//! (flags: bit 0 source NAT, bit 1 down — the server itself says this binding does not work).

use std::net::Ipv4Addr;

use acm::{BindingKey, BindingParams, Proto, RealServer, ServiceKey, MAX_WEIGHT};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// First four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"ACMB";
/// The format version this code speaks.
pub const VERSION: u8 = 1;
/// Length of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Fixed header length before the profile name.
pub const HEADER_LEN: usize = 37;
/// Longest profile name.
pub const MAX_PROFILE_LEN: usize = 64;
/// Length of one binding entry.
pub const ENTRY_LEN: usize = 18;
/// Most entries in one datagram (keeps it under a 1500-byte MTU).
pub const MAX_ENTRIES: usize = 64;
/// Largest datagram [`encode`] produces and [`decode`] accepts.
pub const MAX_DATAGRAM: usize = HEADER_LEN + MAX_PROFILE_LEN + 6 + MAX_ENTRIES * ENTRY_LEN + TAG_LEN;

const KIND_BEACON: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_REPORT: u8 = 3;
const KIND_HEARTBEAT: u8 = 4;
const FLAG_SOURCE_NAT: u8 = 1;
const FLAG_DOWN: u8 = 2;

type HmacSha256 = Hmac<Sha256>;

/// Who sent a datagram: the server (or CM host) address and a random number drawn when the
/// sending module started, so a restarted sender is a new sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sender {
    /// The sender's address (its real-server address for client modules).
    pub addr: Ipv4Addr,
    /// Drawn at start.
    pub instance: u64,
}

/// One binding as a client module announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// Which binding.
    pub key: BindingKey,
    /// Weight and source NAT.
    pub params: BindingParams,
    /// False when the server itself says the binding does not work (its local check failed).
    pub up: bool,
}

/// A failure report of a client module: one binding, or every binding of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The real server.
    pub real: RealServer,
    /// The service; `None`: every service the real server is bound to.
    pub service: Option<ServiceKey>,
}

/// A CM's role in the election, as its heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Pushes to the switches.
    Active,
    /// Standing for election.
    Candidate,
    /// Watching the active CM.
    Standby,
}

/// A CM heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The CM's configured, unique id (lowest wins elections).
    pub cm_id: u64,
    /// Its role.
    pub role: Role,
    /// How often it sends heartbeats.
    pub interval_ms: u32,
    /// Its cache generation.
    pub generation: u64,
    /// How many bindings its cache holds.
    pub bindings: u32,
}

/// What a datagram says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The sender's whole binding list (periodic, and at once after a change).
    Beacon {
        /// How often the sender beacons.
        interval_ms: u32,
        /// Its bindings.
        bindings: Vec<Advert>,
    },
    /// Clean removal (drain) of these bindings.
    Remove {
        /// The bindings.
        bindings: Vec<BindingKey>,
    },
    /// Application-assisted failure detection: these are failed.
    Report {
        /// What failed.
        targets: Vec<Target>,
    },
    /// A CM heartbeat.
    Heartbeat(Heartbeat),
}

/// One datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Who sent it.
    pub sender: Sender,
    /// Per-sender sequence number, increasing.
    pub seq: u64,
    /// Sender's wall clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The switch profile whose key signed it.
    pub profile: String,
    /// What it says.
    pub body: Body,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its header, profile name, body or tag say it must be.
    #[error("truncated: {have} bytes, need at least {need}")]
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes received.
        have: usize,
    },
    /// Longer than any beacon.
    #[error("datagram of {0} bytes is larger than {MAX_DATAGRAM}")]
    TooLarge(usize),
    /// Not an ACM datagram.
    #[error("bad magic (not an ACM beacon)")]
    BadMagic,
    /// A format version this code does not speak.
    #[error("unsupported version {0}")]
    BadVersion(u8),
    /// Flags this version does not define.
    #[error("unknown header flags {0:#06x}")]
    BadHeaderFlags(u16),
    /// Profile name too long or not UTF-8.
    #[error("bad profile name")]
    BadProfile,
    /// No key is configured for the profile.
    #[error("unknown profile {0:?}")]
    UnknownProfile(String),
    /// The HMAC does not match: wrong key or altered in transit.
    #[error("authentication failed (profile {0:?})")]
    BadTag(String),
    /// A message kind this version does not define.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// More entries than [`MAX_ENTRIES`].
    #[error("{0} entries, at most {MAX_ENTRIES}")]
    TooManyEntries(usize),
    /// An entry's protocol is neither TCP nor UDP.
    #[error("entry {index}: protocol {proto} is not TCP or UDP")]
    BadProto {
        /// Entry index.
        index: usize,
        /// The protocol byte.
        proto: u8,
    },
    /// An entry's weight exceeds [`MAX_WEIGHT`].
    #[error("entry {index}: weight {weight} exceeds {MAX_WEIGHT}")]
    BadWeight {
        /// Entry index.
        index: usize,
        /// The weight.
        weight: u32,
    },
    /// An entry's flags are not defined, or do not fit the message kind.
    #[error("entry {index}: bad flags {flags:#04x}")]
    BadEntryFlags {
        /// Entry index.
        index: usize,
        /// The flags byte.
        flags: u8,
    },
    /// A heartbeat role byte is not 0–2.
    #[error("unknown CM role {0}")]
    BadRole(u8),
    /// Bytes after the body.
    #[error("{0} trailing bytes after the body")]
    Trailing(usize),
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More than [`MAX_ENTRIES`] bindings.
    #[error("{0} bindings, at most {MAX_ENTRIES} fit one datagram")]
    TooManyEntries(usize),
    /// Profile name longer than [`MAX_PROFILE_LEN`].
    #[error("profile name longer than {MAX_PROFILE_LEN} bytes")]
    ProfileTooLong,
    /// A weight above [`MAX_WEIGHT`].
    #[error("weight {0} exceeds {MAX_WEIGHT}")]
    BadWeight(u32),
}

fn role_byte(r: Role) -> u8 {
    match r {
        Role::Active => 0,
        Role::Candidate => 1,
        Role::Standby => 2,
    }
}

fn put_entry(out: &mut Vec<u8>, service: Option<ServiceKey>, real: RealServer, weight: u32, flags: u8) {
    let (vip, proto, vport) = match service {
        Some(s) => (s.vip, s.proto.ip_proto(), s.vport),
        None => (Ipv4Addr::UNSPECIFIED, Proto::Tcp.ip_proto(), 0),
    };
    out.extend_from_slice(&vip.octets());
    out.push(proto);
    out.extend_from_slice(&vport.to_be_bytes());
    out.extend_from_slice(&real.rip.octets());
    out.extend_from_slice(&real.rport.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.push(flags);
}

fn count(n: usize) -> Result<u16, EncodeError> {
    if n > MAX_ENTRIES {
        return Err(EncodeError::TooManyEntries(n));
    }
    Ok(n as u16)
}

/// Encodes and signs a message with `key`.
pub fn encode(env: &Envelope, key: &[u8]) -> Result<Vec<u8>, EncodeError> {
    if env.profile.len() > MAX_PROFILE_LEN {
        return Err(EncodeError::ProfileTooLong);
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(match env.body {
        Body::Beacon { .. } => KIND_BEACON,
        Body::Remove { .. } => KIND_REMOVE,
        Body::Report { .. } => KIND_REPORT,
        Body::Heartbeat(_) => KIND_HEARTBEAT,
    });
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&env.sender.addr.octets());
    out.extend_from_slice(&env.sender.instance.to_be_bytes());
    out.extend_from_slice(&env.seq.to_be_bytes());
    out.extend_from_slice(&env.timestamp_ms.to_be_bytes());
    out.push(env.profile.len() as u8);
    out.extend_from_slice(env.profile.as_bytes());
    match &env.body {
        Body::Beacon { interval_ms, bindings } => {
            out.extend_from_slice(&interval_ms.to_be_bytes());
            out.extend_from_slice(&count(bindings.len())?.to_be_bytes());
            for a in bindings {
                if a.params.weight > MAX_WEIGHT {
                    return Err(EncodeError::BadWeight(a.params.weight));
                }
                let flags = (u8::from(a.params.source_nat) * FLAG_SOURCE_NAT) | (u8::from(!a.up) * FLAG_DOWN);
                put_entry(&mut out, Some(a.key.service), a.key.real, a.params.weight, flags);
            }
        }
        Body::Remove { bindings } => {
            out.extend_from_slice(&count(bindings.len())?.to_be_bytes());
            for k in bindings {
                put_entry(&mut out, Some(k.service), k.real, 0, 0);
            }
        }
        Body::Report { targets } => {
            out.extend_from_slice(&count(targets.len())?.to_be_bytes());
            for t in targets {
                put_entry(&mut out, t.service, t.real, 0, 0);
            }
        }
        Body::Heartbeat(h) => {
            out.extend_from_slice(&h.cm_id.to_be_bytes());
            out.push(role_byte(h.role));
            out.extend_from_slice(&h.interval_ms.to_be_bytes());
            out.extend_from_slice(&h.generation.to_be_bytes());
            out.extend_from_slice(&h.bindings.to_be_bytes());
        }
    }
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// A checked reader over a byte slice: every read is bounds-checked and none panics.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    total: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated { need: self.pos + n + TAG_LEN, have: self.total });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn addr(&mut self) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.array::<4>()?))
    }
}

struct RawEntry {
    service: Option<ServiceKey>,
    real: RealServer,
    weight: u32,
    flags: u8,
}

fn entries(r: &mut Reader<'_>, allowed_flags: u8, wildcard: bool) -> Result<Vec<RawEntry>, DecodeError> {
    let n = r.u16()? as usize;
    if n > MAX_ENTRIES {
        return Err(DecodeError::TooManyEntries(n));
    }
    let mut v = Vec::with_capacity(n);
    for index in 0..n {
        let vip = r.addr()?;
        let proto_byte = r.u8()?;
        let vport = r.u16()?;
        let real = RealServer { rip: r.addr()?, rport: r.u16()? };
        let weight = r.u32()?;
        let flags = r.u8()?;
        let proto = Proto::from_ip_proto(proto_byte).ok_or(DecodeError::BadProto { index, proto: proto_byte })?;
        if weight > MAX_WEIGHT {
            return Err(DecodeError::BadWeight { index, weight });
        }
        if flags & !allowed_flags != 0 {
            return Err(DecodeError::BadEntryFlags { index, flags });
        }
        let service =
            if wildcard && vip.is_unspecified() && vport == 0 { None } else { Some(ServiceKey { vip, proto, vport }) };
        v.push(RawEntry { service, real, weight, flags });
    }
    Ok(v)
}

/// The profile a datagram claims to be signed for, without checking anything else
/// (for logs of refused datagrams).
pub fn claimed_profile(buf: &[u8]) -> Option<&str> {
    let n = *buf.get(HEADER_LEN - 1)? as usize;
    std::str::from_utf8(buf.get(HEADER_LEN..HEADER_LEN + n)?).ok()
}

/// Checks and decodes one datagram. `key_of` gives the key of a profile (None: unknown).
/// Never panics, whatever the bytes.
pub fn decode<'k>(buf: &[u8], key_of: impl FnOnce(&str) -> Option<&'k [u8]>) -> Result<Envelope, DecodeError> {
    let total = buf.len();
    if total > MAX_DATAGRAM {
        return Err(DecodeError::TooLarge(total));
    }
    if total < HEADER_LEN + TAG_LEN {
        return Err(DecodeError::Truncated { need: HEADER_LEN + TAG_LEN, have: total });
    }
    let (signed, tag) = buf.split_at(total - TAG_LEN);
    let mut r = Reader { buf: signed, pos: 0, total };
    if r.array::<4>()? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    let kind = r.u8()?;
    let header_flags = r.u16()?;
    let sender = Sender { addr: r.addr()?, instance: r.u64()? };
    let seq = r.u64()?;
    let timestamp_ms = r.u64()?;
    let plen = r.u8()? as usize;
    if plen > MAX_PROFILE_LEN {
        return Err(DecodeError::BadProfile);
    }
    let profile = std::str::from_utf8(r.take(plen)?).map_err(|_| DecodeError::BadProfile)?.to_string();
    let key = key_of(&profile).ok_or_else(|| DecodeError::UnknownProfile(profile.clone()))?;
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signed);
    mac.verify_slice(tag).map_err(|_| DecodeError::BadTag(profile.clone()))?;
    // Authenticated from here on.
    if header_flags != 0 {
        return Err(DecodeError::BadHeaderFlags(header_flags));
    }
    let body = match kind {
        KIND_BEACON => {
            let interval_ms = r.u32()?;
            let bindings = entries(&mut r, FLAG_SOURCE_NAT | FLAG_DOWN, false)?
                .into_iter()
                .filter_map(|e| {
                    Some(Advert {
                        key: BindingKey { service: e.service?, real: e.real },
                        params: BindingParams { weight: e.weight, source_nat: e.flags & FLAG_SOURCE_NAT != 0 },
                        up: e.flags & FLAG_DOWN == 0,
                    })
                })
                .collect();
            Body::Beacon { interval_ms, bindings }
        }
        KIND_REMOVE => Body::Remove {
            bindings: entries(&mut r, 0, false)?
                .into_iter()
                .filter_map(|e| Some(BindingKey { service: e.service?, real: e.real }))
                .collect(),
        },
        KIND_REPORT => Body::Report {
            targets: entries(&mut r, 0, true)?
                .into_iter()
                .map(|e| Target { real: e.real, service: e.service })
                .collect(),
        },
        KIND_HEARTBEAT => {
            let cm_id = r.u64()?;
            let role = match r.u8()? {
                0 => Role::Active,
                1 => Role::Candidate,
                2 => Role::Standby,
                b => return Err(DecodeError::BadRole(b)),
            };
            let h = Heartbeat { cm_id, role, interval_ms: r.u32()?, generation: r.u64()?, bindings: r.u32()? };
            Body::Heartbeat(h)
        }
        k => return Err(DecodeError::UnknownKind(k)),
    };
    let left = signed.len() - r.pos;
    if left != 0 {
        return Err(DecodeError::Trailing(left));
    }
    Ok(Envelope { sender, seq, timestamp_ms, profile, body })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
