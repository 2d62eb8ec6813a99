//! The binding cache's records in the state region: one slot per binding ([`BindingRec`]),
//! one per drop fraction ([`DropRec`]), each crash-atomic on its own. The layout sizes its
//! tables by them; [`super::bindings`] keeps them equal to the cache.

use std::net::Ipv4Addr;

use acm::{BindingKey, BindingParams, BindingState, DropFraction, Proto, RealServer, ServiceKey};
use restart::region::record::{Reader, Record, RecordError, Writer};

use crate::cm::cache::{Entry, Pushed};

/// One binding slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindingRec {
    /// The binding, or `None` for a free slot.
    pub binding: Option<(BindingKey, Saved)>,
}

/// What is kept of a cache entry (counters come back with the next sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Weight and source NAT.
    pub params: BindingParams,
    /// State in the cache.
    pub state: BindingState,
    /// What the switches were last told.
    pub pushed: Pushed,
}

impl Saved {
    pub(super) fn of(e: &Entry) -> Saved {
        Saved { params: e.params, state: e.state, pushed: e.pushed }
    }
}

fn proto_code(p: Proto) -> u8 {
    p.ip_proto()
}

fn proto_of(c: u8) -> Result<Proto, RecordError> {
    Proto::from_ip_proto(c).ok_or(RecordError::Invalid { field: "protocol", value: u64::from(c) })
}

fn state_code(s: BindingState) -> u8 {
    match s {
        BindingState::Testing => 1,
        BindingState::Active => 2,
        BindingState::Draining => 3,
        BindingState::Failed => 4,
        BindingState::Disabled => 5,
    }
}

fn state_of(c: u8) -> Result<BindingState, RecordError> {
    Ok(match c {
        1 => BindingState::Testing,
        2 => BindingState::Active,
        3 => BindingState::Draining,
        4 => BindingState::Failed,
        5 => BindingState::Disabled,
        v => return Err(RecordError::Invalid { field: "binding state", value: u64::from(v) }),
    })
}

fn flag(c: u8, field: &'static str) -> Result<bool, RecordError> {
    match c {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(RecordError::Invalid { field, value: u64::from(v) }),
    }
}

fn params(weight: u32, snat: u8) -> Result<BindingParams, RecordError> {
    let p = BindingParams { weight, source_nat: flag(snat, "source nat")? };
    p.validate().map_err(|_| RecordError::Invalid { field: "weight", value: u64::from(weight) })?;
    Ok(p)
}

impl Record for BindingRec {
    const SIZE: usize = 32;
    fn encode(&self, w: &mut Writer<'_>) {
        let Some((k, s)) = self.binding else { return };
        let (ptag, pw, psnat) = match s.pushed {
            Pushed::Absent => (0u8, 0u32, false),
            Pushed::Draining => (1, 0, false),
            Pushed::Active(p) => (2, p.weight, p.source_nat),
        };
        w.u8(1);
        w.u8(proto_code(k.service.proto));
        w.u8(state_code(s.state));
        w.u8(ptag);
        w.u8(u8::from(s.params.source_nat));
        w.u8(u8::from(psnat));
        w.u16(k.service.vport);
        w.u32(u32::from(k.service.vip));
        w.u32(u32::from(k.real.rip));
        w.u16(k.real.rport);
        w.skip(2);
        w.u32(s.params.weight);
        w.u32(pw);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let used = flag(r.u8()?, "used")?;
        if !used {
            return Ok(BindingRec { binding: None });
        }
        let proto = proto_of(r.u8()?)?;
        let state = state_of(r.u8()?)?;
        let ptag = r.u8()?;
        let snat = r.u8()?;
        let psnat = r.u8()?;
        let vport = r.u16()?;
        let vip = Ipv4Addr::from(r.u32()?);
        let rip = Ipv4Addr::from(r.u32()?);
        let rport = r.u16()?;
        r.bytes(2)?;
        let weight = r.u32()?;
        let pw = r.u32()?;
        let pushed = match ptag {
            0 => Pushed::Absent,
            1 => Pushed::Draining,
            2 => Pushed::Active(params(pw, psnat)?),
            v => return Err(RecordError::Invalid { field: "pushed", value: u64::from(v) }),
        };
        let key = BindingKey { service: ServiceKey { vip, proto, vport }, real: RealServer { rip, rport } };
        Ok(BindingRec { binding: Some((key, Saved { params: params(weight, snat)?, state, pushed })) })
    }
}

/// One drop-fraction slot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DropRec {
    /// The service and its fraction, or `None` for a free slot.
    pub drop: Option<(ServiceKey, DropFraction)>,
}

impl Record for DropRec {
    const SIZE: usize = 24;
    fn encode(&self, w: &mut Writer<'_>) {
        let Some((s, f)) = self.drop else { return };
        w.u8(1);
        w.u8(proto_code(s.proto));
        w.u16(s.vport);
        w.u32(u32::from(s.vip));
        w.u64(f.get().to_bits());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        if !flag(r.u8()?, "used")? {
            return Ok(DropRec { drop: None });
        }
        let proto = proto_of(r.u8()?)?;
        let vport = r.u16()?;
        let vip = Ipv4Addr::from(r.u32()?);
        let bits = r.u64()?;
        let f = DropFraction::new(f64::from_bits(bits))
            .map_err(|_| RecordError::Invalid { field: "drop fraction", value: bits })?;
        Ok(DropRec { drop: Some((ServiceKey { vip, proto, vport }, f)) })
    }
}
