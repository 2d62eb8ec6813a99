//! Extra telnet listeners (`[[telnet.extra]]`): typically port 23 on the appliance's port
//! addresses, reached through the dataplane's exception path.
//!
//! The dataplane passes traffic for a port address that it does not handle itself (TCP to
//! the address, for one) to the port's tap, a kernel interface in the root namespace with the
//! port's address; what the kernel sends back through the tap leaves through the port. So a
//! socket listening on the port address serves clients on that port's network.
//!
//! Two things make that socket special:
//! * It is bound to the tap (SO_BINDTODEVICE) when an interface is named: the host may have
//!   other interfaces in the same subnet (other dataplanes' taps in a lab), and only a socket
//!   bound to the tap is sure to receive from it and to answer through it.
//! * The tap comes and goes with the dataplane. The listener is bound once the interface
//!   exists (retrying every second), and bound again when the interface disappears or is made
//!   anew (a new interface index): a socket bound to a vanished interface hears nothing.
//!
//! Under restartd the listener is a kept channel, `telnet-extra:ADDRESS@IFINDEX`, like the main
//! one: a new generation adopts it ([`adopt`]) instead of binding anew, so a client connecting
//! while the control plane restarts waits in the backlog instead of being refused. A kept
//! listener whose interface has been made anew meanwhile is released and bound again.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use cli::ServerSettings;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::ExtraListen;
use crate::telnet::{self, CliShared};
use crate::zlr::Zlr;

/// How often a missing interface is looked for, and a bound one checked.
const RETRY: Duration = Duration::from_secs(1);

/// Why a listener could not be bound (yet).
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The named interface does not exist (the dataplane has not made its tap yet).
    #[error("interface {0} does not exist")]
    NoInterface(String),
    /// The socket calls failed.
    #[error("{0}")]
    Socket(#[from] io::Error),
}

/// A listener for one `[[telnet.extra]]` kept by a previous generation.
#[derive(Debug)]
pub struct Kept {
    name: String,
    index: u32,
    fd: OwnedFd,
}

/// The kept-channel name of `l`'s listener without the interface index.
fn kept_prefix(l: &ExtraListen) -> String {
    format!("telnet-extra:{}@", l.address)
}

/// Takes the listener for `l` that the previous generation kept, if any. Call it before
/// [`Zlr::release_leftovers`] (which closes whatever nobody took).
pub fn adopt(z: Option<&'static Zlr>, l: &ExtraListen) -> Option<Kept> {
    let z = z?;
    let mut kept = None;
    for (name, fd) in z.adopt_prefixed(&kept_prefix(l)) {
        match name.rsplit_once('@').and_then(|(_, i)| i.parse::<u32>().ok()) {
            Some(index) if kept.is_none() => kept = Some(Kept { name, index, fd }),
            _ => z.release(&name),
        }
    }
    kept
}

/// The index `l`'s interface has now (0 without an interface; `None` when it is missing).
fn current_index(l: &ExtraListen) -> Option<u32> {
    match &l.interface {
        Some(name) => ifindex(name),
        None => Some(0),
    }
}

/// A listener for `l`: the kept one while its interface is still the one it was bound to,
/// else a new one (kept under restartd). Returns it, its interface index and its kept name.
fn listener(
    l: &ExtraListen,
    z: Option<&'static Zlr>,
    kept: Option<Kept>,
) -> Result<(TcpListener, u32, Option<String>), ListenError> {
    if let Some(k) = kept {
        if current_index(l) == Some(k.index) {
            let std = std::net::TcpListener::from(k.fd);
            std.set_nonblocking(true)?;
            return Ok((TcpListener::from_std(std)?, k.index, Some(k.name)));
        }
        tracing::info!("telnet on {}: the kept listener's interface was made anew; binding again", l.address);
        if let Some(z) = z {
            z.release(&k.name);
        }
    }
    let (listener, index) = bind(l)?;
    let name = z.map(|z| {
        let name = format!("{}{index}", kept_prefix(l));
        z.keep(&name, listener.as_fd());
        name
    });
    Ok((listener, index, name))
}

/// Serves telnet on `l` for as long as the returned task runs, sharing `shared`, `settings`
/// (and so the `show telnet` counters) and the session limit with every other listener.
/// Under restartd (`z`) the listener is kept across restarts; `kept` is the one a previous
/// generation left (see [`adopt`]).
pub fn spawn(
    l: ExtraListen,
    shared: Arc<CliShared>,
    settings: ServerSettings,
    max_sessions: usize,
    z: Option<&'static Zlr>,
    mut kept: Option<Kept>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let what = match &l.interface {
            Some(i) => format!("{} on {i}", l.address),
            None => l.address.to_string(),
        };
        let mut last_error = String::new();
        loop {
            let adopted = kept.is_some();
            match listener(&l, z, kept.take()) {
                Ok((listener, index, name)) => {
                    tracing::info!("telnet on {what}{}", if adopted && name.is_some() { " (kept)" } else { "" });
                    last_error.clear();
                    let serving = tokio::spawn(telnet::serve(listener, shared.clone(), settings.clone(), max_sessions));
                    let Some(interface) = &l.interface else {
                        let _ = serving.await;
                        return;
                    };
                    while ifindex(interface) == Some(index) {
                        tokio::time::sleep(RETRY).await;
                    }
                    if let (Some(z), Some(name)) = (z, &name) {
                        z.release(name);
                    }
                    serving.abort();
                    tracing::warn!("telnet on {what}: the interface is gone or was made anew; listening again");
                }
                Err(e) => {
                    let msg = e.to_string();
                    if msg != last_error {
                        tracing::warn!("telnet on {what}: not yet ({msg}); retrying every {RETRY:?}");
                        last_error = msg;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    })
}

/// The interface index of `name`, if it exists.
fn ifindex(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?.trim().parse().ok()
}

/// A listening socket for `l`, and the index of its interface (0 without one).
pub fn bind(l: &ExtraListen) -> Result<(TcpListener, u32), ListenError> {
    let index = match &l.interface {
        Some(name) => ifindex(name).ok_or_else(|| ListenError::NoInterface(name.clone()))?,
        None => 0,
    };
    let s = Socket::new(Domain::for_address(l.address), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if let Some(name) = &l.interface {
        s.bind_device(Some(name.as_bytes()))?;
    }
    // The address may not be on the interface yet (the dataplane adds it right after making
    // the tap): bind anyway.
    if l.address.is_ipv4() {
        s.set_freebind(true)?;
    } else {
        s.set_freebind_ipv6(true)?;
    }
    s.bind(&l.address.into())?;
    s.listen(128)?;
    s.set_nonblocking(true)?;
    Ok((TcpListener::from_std(s.into())?, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_without_interface_and_waits_for_a_missing_one() {
        let (l, index) = bind(&ExtraListen { address: "127.0.0.1:0".parse().unwrap(), interface: None }).unwrap();
        assert_eq!(index, 0);
        assert!(l.local_addr().unwrap().port() != 0);
        let e = bind(&ExtraListen { address: "127.0.0.1:0".parse().unwrap(), interface: Some("acm-none0".into()) })
            .unwrap_err();
        assert!(matches!(e, ListenError::NoInterface(_)), "{e}");
        // Loopback exists everywhere; binding to it needs CAP_NET_RAW on older kernels only.
        if let Ok((_l, index)) =
            bind(&ExtraListen { address: "127.0.0.1:0".parse().unwrap(), interface: Some("lo".into()) })
        {
            assert_eq!(Some(index), ifindex("lo"));
        }
    }
}
