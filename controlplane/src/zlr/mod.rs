//! Zero-loss restart of the control plane, with the `restart` crate's framework.
//!
//! Started by `restartd` (`RESTARTD_SOCK` set), the controlplane:
//!
//! * keeps its listening sockets (`telnet`, `api`, `beacon`, and `telnet-extra:ADDRESS@IFINDEX`
//!   for each `[[telnet.extra]]`, see [`crate::telnet_listen`]) and every accepted telnet session
//!   (`telnet:ID`) and API connection (`api:ID`) as kept channels, released just before a clean
//!   close; a new generation adopts them instead of binding anew;
//! * keeps the binding cache ([`bindings`]), the running-config and the health checker's state
//!   ([`blob`]) in a state region, so a new
//!   generation starts with exactly the cache its predecessor had — nothing to relearn, nothing
//!   for the switch sync to remove;
//! * records every telnet session after each input it processed ([`session`]): a session
//!   continues at the same prompt with the same half-typed line, nothing echoed twice.
//!
//! Without restartd nothing here is active and the controlplane runs as before.
//!
//! A region that cannot be used (corrupted, truncated, another layout version) is logged as an
//! error and replaced by a fresh one: a cold start (startup-config replay, sync grace), never a
//! crash loop.

pub mod binding_records;
pub mod bindings;
pub mod blob;
pub mod layout;
pub mod session;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use restart::region::{OpenError, Region, RegionOptions};
use restart::service::{Service, ServiceError};
use thiserror::Error;

use layout::{Global, T_GLOBAL};

/// Why zero-loss restart could not be set up.
#[derive(Debug, Error)]
pub enum ZlrError {
    /// Talking to restartd failed.
    #[error("restartd: {0}")]
    Service(#[from] ServiceError),
    /// No state region could be created at all.
    #[error("state region: {0}")]
    Region(#[from] OpenError),
    /// Set up twice.
    #[error("zero-loss restart already set up")]
    Twice,
}

/// How this generation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// First generation, or the previous state was unusable: replay the startup-config.
    Cold,
    /// The previous generation's state region is open: take over its cache, config, sessions.
    Recover,
}

/// The process's restartd connection and state region.
pub struct Zlr {
    service: Service,
    inherited: Mutex<BTreeMap<String, OwnedFd>>,
    region: Region,
    region_name: String,
    generation: u64,
    start: Start,
    next_id: Mutex<Global>,
}

static ZLR: OnceLock<Zlr> = OnceLock::new();

/// The running zero-loss restart setup; `None` when not started by restartd.
pub fn get() -> Option<&'static Zlr> {
    ZLR.get()
}

/// The region name of a controlplane instance: one per API socket path (unique per instance).
pub fn region_name(api_socket: &std::path::Path) -> String {
    format!("acm-controlplane-{:016x}", layout::fnv1a(api_socket.as_os_str().as_encoded_bytes()))
}

impl Zlr {
    /// Connects to restartd when started by it (`Ok(None)` otherwise), and opens the previous
    /// generation's state region or creates a fresh one. Call first thing in `main`.
    pub fn init(region_name: &str, sessions: u32) -> Result<Option<&'static Zlr>, ZlrError> {
        let Some(mut service) = Service::from_env()? else { return Ok(None) };
        let ri = service.reginfo().clone();
        tracing::info!(
            "generation {} of {} under restartd ({})",
            ri.generation,
            ri.service,
            match &ri.previous_exit {
                None => "first start".to_string(),
                Some(c) => format!("restart after: {c}"),
            }
        );
        let inherited = service.take_all();
        let opts = RegionOptions::default();
        let layout = layout::layout(sessions);
        let (region, start) = if ri.generation > 1 {
            match Region::open(region_name, &layout, &opts) {
                Ok(r) => (r, Start::Recover),
                Err(e) => {
                    tracing::error!(
                        "STATE REGION UNUSABLE: {e}. Cold start: the binding cache and the running-config come \
                         from the startup-config and the switches' sync; telnet sessions of the previous \
                         generation are closed"
                    );
                    (Region::create(region_name, &layout, &opts)?, Start::Cold)
                }
            }
        } else {
            (Region::create(region_name, &layout, &opts)?, Start::Cold)
        };
        region.set_generation(ri.generation);
        tracing::info!(
            "state region {} ({:?}), layout {} v{}",
            region.path().display(),
            region.backing(),
            layout.name,
            layout.version
        );
        let global = match region.read::<Global>(T_GLOBAL, 0) {
            Ok(g) => g.unwrap_or_default(),
            Err(e) => {
                tracing::error!("state region: global record unreadable ({e}); channel ids restart at a fresh base");
                Global { next_id: 1 << 40 }
            }
        };
        service.declare_layout(restart::proto::LayoutInfo {
            name: layout::LAYOUT_NAME.into(),
            version: layout::LAYOUT_VERSION,
        })?;
        let z = Zlr {
            service,
            inherited: Mutex::new(inherited),
            region,
            region_name: region_name.to_string(),
            generation: ri.generation,
            start,
            next_id: Mutex::new(global),
        };
        ZLR.set(z).map_err(|_| ZlrError::Twice)?;
        Ok(ZLR.get())
    }

    /// Generation number (1 = first start).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Cold start or recovery.
    pub fn start(&self) -> Start {
        self.start
    }

    /// The state region.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// A fresh channel id, never used by any generation of this region.
    pub fn next_id(&self) -> u64 {
        let mut g = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
        g.next_id += 1;
        if let Err(e) = self.region.write(T_GLOBAL, 0, &*g) {
            tracing::error!("state region: global record: {e}");
        }
        g.next_id
    }

    /// Has restartd keep `fd` under `name` (call right after opening it).
    pub fn keep(&self, name: &str, fd: BorrowedFd<'_>) {
        if let Err(e) = self.service.keep(name, fd) {
            tracing::error!("restartd: keep {name}: {e}");
        }
    }

    /// Stops keeping `name` (call just before closing it).
    pub fn release(&self, name: &str) {
        if let Err(e) = self.service.release(name) {
            tracing::error!("restartd: release {name}: {e}");
        }
    }

    /// Takes the channel `name` handed over by the previous generation.
    pub fn adopt(&self, name: &str) -> Option<OwnedFd> {
        self.inherited.lock().unwrap_or_else(|e| e.into_inner()).remove(name)
    }

    /// Takes every handed-over channel whose name starts with `prefix`.
    pub fn adopt_prefixed(&self, prefix: &str) -> Vec<(String, OwnedFd)> {
        let mut m = self.inherited.lock().unwrap_or_else(|e| e.into_inner());
        let names: Vec<String> = m.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        names.into_iter().filter_map(|n| m.remove(&n).map(|fd| (n, fd))).collect()
    }

    /// Releases and closes every handed-over channel nobody took (after a cold start, or an
    /// unknown name): input is discarded first so the peer sees a FIN, not a reset.
    pub fn release_leftovers(&self) {
        let left = std::mem::take(&mut *self.inherited.lock().unwrap_or_else(|e| e.into_inner()));
        for (name, fd) in left {
            tracing::warn!("kept channel {name} not taken over; closing it");
            discard_input(fd.as_fd());
            self.release(&name);
        }
    }

    /// Tells restartd this generation serves.
    pub fn ready(&self) {
        if let Err(e) = self.service.ready() {
            tracing::error!("restartd: ready: {e}");
        }
    }

    /// Watches the control connection: a planned restart (quiesce) exits at once, leaving the
    /// state for the next generation; restartd gone means no next generation: the region is
    /// removed and the process exits.
    pub fn spawn_control_watch(&'static self) -> std::io::Result<()> {
        std::thread::Builder::new().name("restartd-control".into()).spawn(move || loop {
            // Blocks until restartd sends something or goes away (the socket is blocking).
            let mut b = [0u8; 1];
            if let Err(e) = restart::sys::recv(self.service.control_fd(), &mut b, libc::MSG_PEEK) {
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            }
            match self.service.poll_command() {
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Ok(Some(restart::service::Command::Quiesce)) => {
                    tracing::info!("quiesce: exiting for a planned restart; state and channels are handed over");
                    std::process::exit(0);
                }
                Err(e) => {
                    tracing::info!("restartd gone ({e}); removing the state region and exiting");
                    self.remove_region();
                    std::process::exit(0);
                }
            }
        })?;
        Ok(())
    }

    /// Removes the state region (clean stop: no next generation).
    pub fn remove_region(&self) {
        Region::remove(&self.region_name, &RegionOptions::default());
    }
}

/// Drops whatever is queued for reading so closing sends FIN, not RST.
pub fn discard_input(fd: BorrowedFd<'_>) {
    let tcp = restart::sys::socket_domain(fd).is_ok_and(|d| d == libc::AF_INET || d == libc::AF_INET6);
    for _ in 0..64 {
        let r = if tcp {
            restart::sys::tcp_discard(fd, 1 << 20)
        } else {
            let mut buf = [0u8; 4096];
            restart::sys::recv(fd, &mut buf, libc::MSG_DONTWAIT)
        };
        match r {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}
