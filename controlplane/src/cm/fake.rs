//! An in-memory switch for tests and benchmarks: behaves like the dataplane's switch API
//! (Remove drains, ForceRemove unbinds, Drop needs the service), can be reset (as a restarted
//! dataplane), taken down, or slowed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acm::{
    AcmError, BindingCounters, BindingInfo, BindingKey, BindingParams, BindingState, DropFraction, Primitive,
    ServiceKey,
};

use super::switch::{DriverAck, DriverError, SwitchDriver, SwitchView};

/// The switch's state, shared between the driver and the test.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Bindings and their state (Active or Draining).
    pub bindings: BTreeMap<BindingKey, (BindingParams, BindingState)>,
    /// Drop fractions.
    pub drops: HashMap<ServiceKey, DropFraction>,
    /// Every operation applied, in order.
    pub log: Vec<Primitive>,
    /// When set, every call fails as unavailable.
    pub down: bool,
    /// Added to every call.
    pub delay: Duration,
}

/// A fake switch; clone it to keep a handle for the test.
#[derive(Debug, Clone, Default)]
pub struct FakeSwitch {
    /// The state.
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeSwitch {
    /// An empty switch.
    pub fn new() -> FakeSwitch {
        FakeSwitch::default()
    }

    /// Locks the state.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything, as a restarted switch.
    pub fn reset(&self) {
        let mut s = self.lock();
        s.bindings.clear();
        s.drops.clear();
    }

    /// Ends every drain, as when the last flows finish.
    pub fn finish_drains(&self) {
        self.lock().bindings.retain(|_, (_, st)| *st != BindingState::Draining);
    }

    /// Takes the operations applied so far.
    pub fn take_log(&self) -> Vec<Primitive> {
        std::mem::take(&mut self.lock().log)
    }

    /// The state of one binding.
    pub fn state_of(&self, key: &BindingKey) -> Option<BindingState> {
        self.lock().bindings.get(key).map(|b| b.1)
    }
}

impl SwitchDriver for FakeSwitch {
    fn apply(&mut self, op: &Primitive) -> Result<DriverAck, DriverError> {
        let delay = self.lock().delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut s = self.lock();
        if s.down {
            return Err(DriverError::Unavailable("fake switch is down".into()));
        }
        s.log.push(op.clone());
        let changed = match *op {
            Primitive::Add { key, params } => {
                params.validate()?;
                let new = (params, BindingState::Active);
                s.bindings.insert(key, new) != Some(new)
            }
            Primitive::Remove { key } => match s.bindings.get_mut(&key) {
                None => return Err(AcmError::UnknownBinding(key).into()),
                Some(b) if b.1 == BindingState::Draining => false,
                Some(b) => {
                    b.1 = BindingState::Draining;
                    true
                }
            },
            Primitive::ForceRemove { key } => {
                if s.bindings.remove(&key).is_none() {
                    return Err(AcmError::UnknownBinding(key).into());
                }
                true
            }
            Primitive::Drop { service, fraction } => {
                if !s.bindings.keys().any(|k| k.service == service) {
                    return Err(AcmError::UnknownService(service).into());
                }
                s.drops.insert(service, fraction) != Some(fraction)
            }
            Primitive::List => false,
        };
        Ok(DriverAck { changed, switch_ns: None })
    }

    fn list(&mut self) -> Result<SwitchView, DriverError> {
        let s = self.lock();
        if s.down {
            return Err(DriverError::Unavailable("fake switch is down".into()));
        }
        let bindings = s
            .bindings
            .iter()
            .map(|(k, (p, st))| BindingInfo { key: *k, params: *p, state: *st, counters: BindingCounters::default() })
            .collect();
        Ok(SwitchView { bindings, drops: Some(s.drops.clone()) })
    }

    fn describe(&self) -> String {
        "fake switch (in memory)".into()
    }
}
