//! Ports: configuration, lifecycle, information, and their queue handles.

mod queue;
mod types;

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use queue::{RxQueue, TxQueue};
pub use types::{
    Direction, Duplex, LinkStatus, PortConfigError, PortInfo, PortQueryError, PortStateError, PortStats, QueueError,
};

use crate::eal::Eal;
use crate::errno::Errno;
use crate::ethdev::{port_name, PortId};
use crate::live;
use crate::mempool::Mempool;

/// Which ports have a live [`Port`] handle (one per port).
static CONFIGURED: [AtomicBool; dpdk_sys::RTE_MAX_ETHPORTS as usize] =
    [const { AtomicBool::new(false) }; dpdk_sys::RTE_MAX_ETHPORTS as usize];

/// RSS hash types asked for when spreading over several rx queues: IPv4
/// (and IPv6) addresses plus TCP/UDP ports, masked by what the device has.
const RSS_TYPES: u64 =
    dpdk_sys::RTE_ETH_RSS_IP as u64 | dpdk_sys::RTE_ETH_RSS_TCP as u64 | dpdk_sys::RTE_ETH_RSS_UDP as u64;

/// The IPv4 subset of [`RSS_TYPES`]: at least one is needed.
const RSS_IPV4: u64 = dpdk_sys::RTE_ETH_RSS_IPV4 as u64
    | dpdk_sys::RTE_ETH_RSS_FRAG_IPV4 as u64
    | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_TCP as u64
    | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_UDP as u64
    | dpdk_sys::RTE_ETH_RSS_NONFRAG_IPV4_OTHER as u64;

/// How to configure a port.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Receive queues (>= 1). With more than one, RSS on IPv4/TCP/UDP spreads
    /// flows over them; the device must support it.
    pub rx_queues: u16,
    /// Transmit queues (>= 1).
    pub tx_queues: u16,
    /// Descriptors per rx queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// Descriptors per tx queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// Pools that rx queues fill from: one shared by all queues, or one per
    /// queue. Each needs more mbufs than `rx_desc` plus what is in flight.
    pub rx_pools: Vec<Mempool>,
    /// Accept frames for any destination MAC. Ignored (with a log line) by
    /// devices without the notion.
    pub promiscuous: bool,
    /// MTU; `None` keeps the device default (1500).
    pub mtu: Option<u16>,
    /// RSS hash key (length = the device's `hash_key_size`, usually 40),
    /// e.g. a symmetric key (`0x6d, 0x5a` repeated) so both directions of a
    /// flow land on one queue; `None` keeps the driver's key. Only used with
    /// more than one rx queue.
    pub rss_key: Option<Vec<u8>>,
}

impl PortConfig {
    /// One rx and one tx queue of 1024 descriptors, rx from `pool`,
    /// promiscuous, default MTU.
    pub fn new(pool: Mempool) -> PortConfig {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rx_pools: vec![pool],
            promiscuous: true,
            mtu: None,
            rss_key: None,
        }
    }

    /// Sets the queue counts.
    pub fn queues(mut self, rx: u16, tx: u16) -> PortConfig {
        self.rx_queues = rx;
        self.tx_queues = tx;
        self
    }

    /// Sets the descriptor counts.
    pub fn descriptors(mut self, rx: u16, tx: u16) -> PortConfig {
        self.rx_desc = rx;
        self.tx_desc = tx;
        self
    }
}

/// State shared by a [`Port`] and its queue handles; the device is stopped
/// and closed when the last of them goes.
#[derive(Debug)]
pub(crate) struct PortShared {
    id: u16,
    rx_taken: Box<[AtomicBool]>,
    tx_taken: Box<[AtomicBool]>,
    started: AtomicBool,
    closed: AtomicBool,
    /// Kept alive for the device: rx rings hold their mbufs.
    _pools: Vec<Mempool>,
    /// DPDK keeps a pointer to the key in the device configuration.
    _rss_key: Option<Box<[u8]>>,
}

impl PortShared {
    fn stop_and_close(&self) -> Result<(), PortStateError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let port = PortId(self.id);
        if self.started.swap(false, Ordering::SeqCst) {
            // SAFETY: the port is ours (CONFIGURED) and no queue handle polls
            // it (callers guarantee: all handles dropped or checked not taken).
            let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.id) };
            if ret < 0 {
                tracing::warn!(%port, "rte_eth_dev_stop: {}", Errno::from_ret(ret));
            }
        }
        // SAFETY: as above; after close the port id is never used by this
        // handle again (closed flag).
        let ret = unsafe { dpdk_sys::rte_eth_dev_close(self.id) };
        if ret < 0 {
            return Err(PortStateError::Device { port, op: "rte_eth_dev_close", errno: Errno::from_ret(ret) });
        }
        Ok(())
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_close() {
            tracing::warn!("{e}");
        }
        CONFIGURED[usize::from(self.id)].store(false, Ordering::SeqCst);
        live::release();
    }
}

/// A configured ethdev port. One `Port` per port id exists at a time.
///
/// Queues are handed out once each as [`RxQueue`] / [`TxQueue`]. The port
/// can only be stopped or closed while none of them is alive, so no lcore
/// ever polls a stopped device. Dropping the `Port` (and its last queue
/// handle) stops and closes the device, releasing its port id.
#[derive(Debug)]
pub struct Port {
    shared: Arc<PortShared>,
    rx_queues: u16,
    tx_queues: u16,
}

/// Resets the CONFIGURED flag unless disarmed.
struct ClaimGuard(u16);

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        CONFIGURED[usize::from(self.0)].store(false, Ordering::SeqCst);
    }
}

impl Port {
    /// Configures port `id` (`rte_eth_dev_configure` and queue setup):
    /// queues, descriptors, rx pools, RSS when `rx_queues > 1`, MTU,
    /// promiscuous mode. The port is not started: see [`Port::start`].
    pub fn configure(_eal: &Eal, id: PortId, config: &PortConfig) -> Result<Port, PortConfigError> {
        let port = id;
        if usize::from(id.0) >= CONFIGURED.len() || !is_valid_port(id) {
            return Err(PortConfigError::InvalidPort { port });
        }
        if CONFIGURED[usize::from(id.0)].compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(PortConfigError::AlreadyConfigured { port });
        }
        let claim = ClaimGuard(id.0);
        let info = dev_info(id).map_err(|errno| PortConfigError::Info { port, errno })?;
        let driver = driver_name(&info);

        for (direction, requested, max) in [
            (Direction::Rx, config.rx_queues, info.max_rx_queues),
            (Direction::Tx, config.tx_queues, info.max_tx_queues),
        ] {
            if requested == 0 || requested > max {
                return Err(PortConfigError::QueueCount { port, driver, direction, requested, max });
            }
        }
        let pools = config.rx_pools.len();
        if pools != 1 && pools != usize::from(config.rx_queues) {
            return Err(PortConfigError::PoolCount { port, pools, rx_queues: config.rx_queues });
        }

        // SAFETY: rte_eth_conf is plain C data for which all-zero is the
        // documented "defaults" value.
        let mut conf: dpdk_sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        let mut rss_key = None;
        if config.rx_queues > 1 {
            let rss_hf = info.flow_type_rss_offloads & RSS_TYPES;
            if rss_hf & RSS_IPV4 == 0 {
                return Err(PortConfigError::RssUnsupported {
                    port,
                    driver,
                    rx_queues: config.rx_queues,
                    supported: info.flow_type_rss_offloads,
                });
            }
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if let Some(key) = &config.rss_key {
                let expected = usize::from(info.hash_key_size);
                if expected != 0 && key.len() != expected || key.len() > usize::from(u8::MAX) {
                    return Err(PortConfigError::RssKeyLength { port, len: key.len(), expected });
                }
                let mut key: Box<[u8]> = key.clone().into_boxed_slice();
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
                rss_key = Some(key);
            }
            if info.rx_offload_capa & u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH) != 0 {
                conf.rxmode.offloads |= u64::from(dpdk_sys::RTE_ETH_RX_OFFLOAD_RSS_HASH);
            }
        }
        if let Some(mtu) = config.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(PortConfigError::Mtu { port, mtu, min: info.min_mtu, max: info.max_mtu });
            }
            conf.rxmode.mtu = u32::from(mtu);
        }

        let device = |op, ret: i32| PortConfigError::Device { port, op, errno: Errno::from_ret(ret) };
        // SAFETY: valid port; conf is a fully initialised rte_eth_conf and the
        // RSS key it points to (if any) is kept alive in PortShared.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(id.0, config.rx_queues, config.tx_queues, &conf) };
        if ret < 0 {
            return Err(device("rte_eth_dev_configure", ret));
        }
        let (mut rx_desc, mut tx_desc) = (config.rx_desc, config.tx_desc);
        // SAFETY: valid port; both pointers are valid u16 locations.
        let ret = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut rx_desc, &mut tx_desc) };
        if ret < 0 {
            return Err(device("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id.0) };
        let socket = u32::try_from(socket).unwrap_or(dpdk_sys::SOCKET_ID_ANY as u32);
        for q in 0..config.rx_queues {
            let pool = &config.rx_pools[usize::from(q) % pools];
            // SAFETY: valid, configured port; q < rx_queues; NULL rx_conf means
            // driver defaults; the pool is alive and kept alive in PortShared.
            let ret =
                unsafe { dpdk_sys::rte_eth_rx_queue_setup(id.0, q, rx_desc, socket, std::ptr::null(), pool.as_ptr()) };
            if ret < 0 {
                let errno = Errno::from_ret(ret);
                return Err(PortConfigError::QueueSetup { port, direction: Direction::Rx, queue: q, errno });
            }
        }
        for q in 0..config.tx_queues {
            // SAFETY: valid, configured port; q < tx_queues; NULL tx_conf means
            // driver defaults.
            let ret = unsafe { dpdk_sys::rte_eth_tx_queue_setup(id.0, q, tx_desc, socket, std::ptr::null()) };
            if ret < 0 {
                let errno = Errno::from_ret(ret);
                return Err(PortConfigError::QueueSetup { port, direction: Direction::Tx, queue: q, errno });
            }
        }
        if let Err(errno) = set_promiscuous(id, config.promiscuous) {
            if errno.is_not_supported() {
                tracing::info!(%port, %driver, "promiscuous mode not supported; ignored");
            } else {
                return Err(PortConfigError::Device { port, op: "rte_eth_promiscuous_enable/disable", errno });
            }
        }

        std::mem::forget(claim);
        live::acquire();
        let flags = |n| (0..n).map(|_| AtomicBool::new(false)).collect::<Box<[_]>>();
        let shared = PortShared {
            id: id.0,
            rx_taken: flags(config.rx_queues),
            tx_taken: flags(config.tx_queues),
            started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            _pools: config.rx_pools.clone(),
            _rss_key: rss_key,
        };
        tracing::debug!(%port, %driver, rx = config.rx_queues, tx = config.tx_queues, rx_desc, tx_desc, "port configured");
        Ok(Port { shared: Arc::new(shared), rx_queues: config.rx_queues, tx_queues: config.tx_queues })
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        PortId(self.shared.id)
    }

    /// The device name (e.g. `net_null0`, `0000:01:00.0`).
    pub fn name(&self) -> String {
        port_name(self.id()).unwrap_or_default()
    }

    /// Number of rx queues configured.
    pub fn rx_queue_count(&self) -> u16 {
        self.rx_queues
    }

    /// Number of tx queues configured.
    pub fn tx_queue_count(&self) -> u16 {
        self.tx_queues
    }

    /// Whether [`start`](Self::start) succeeded and no stop followed.
    pub fn is_started(&self) -> bool {
        self.shared.started.load(Ordering::SeqCst)
    }

    /// Takes the handle of rx queue `queue`; fails if it does not exist or
    /// its handle is alive already. Dropping the handle gives it back.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, QueueError> {
        take(&self.shared.rx_taken, self.id(), Direction::Rx, queue)?;
        Ok(RxQueue { shared: Arc::clone(&self.shared), queue })
    }

    /// Takes the handle of tx queue `queue` (see [`rx_queue`](Self::rx_queue)).
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, QueueError> {
        take(&self.shared.tx_taken, self.id(), Direction::Tx, queue)?;
        Ok(TxQueue { shared: Arc::clone(&self.shared), queue })
    }

    /// Starts the device (`rte_eth_dev_start`): rx rings fill, traffic flows.
    pub fn start(&mut self) -> Result<(), PortStateError> {
        // SAFETY: the port is configured and owned by this handle.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(self.shared.id) };
        if ret < 0 {
            return Err(self.state_err("rte_eth_dev_start", ret));
        }
        self.shared.started.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Stops the device (`rte_eth_dev_stop`). Refused while queue handles are
    /// alive: stop the lcores polling them and drop the handles first.
    pub fn stop(&mut self) -> Result<(), PortStateError> {
        self.check_no_handles()?;
        // SAFETY: the port is owned by this handle and no queue handle exists,
        // so nothing polls it concurrently.
        let ret = unsafe { dpdk_sys::rte_eth_dev_stop(self.shared.id) };
        if ret < 0 {
            return Err(self.state_err("rte_eth_dev_stop", ret));
        }
        self.shared.started.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Stops and closes the device (`rte_eth_dev_close`), releasing the port
    /// id and the mbufs in its rings. If queue handles are still alive this
    /// returns [`PortStateError::QueuesInUse`] and the device is closed when
    /// the last handle is dropped instead.
    pub fn close(self) -> Result<(), PortStateError> {
        self.check_no_handles()?;
        self.shared.stop_and_close()
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<(), PortStateError> {
        set_promiscuous(self.id(), on).map_err(|errno| PortStateError::Device {
            port: self.id(),
            op: "rte_eth_promiscuous_enable/disable",
            errno,
        })
    }

    /// Changes the MTU (`rte_eth_dev_set_mtu`).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<(), PortStateError> {
        // SAFETY: the port is configured and owned by this handle.
        let ret = unsafe { dpdk_sys::rte_eth_dev_set_mtu(self.shared.id, mtu) };
        if ret < 0 {
            return Err(self.state_err("rte_eth_dev_set_mtu", ret));
        }
        Ok(())
    }

    /// The device's MAC address, as DPDK gives it (the crates above wrap it in their own
    /// address type).
    pub fn mac_addr(&self) -> Result<[u8; 6], PortQueryError> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port; addr is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_macaddr_get(self.shared.id, &mut addr) };
        if ret < 0 {
            return Err(self.query_err("rte_eth_macaddr_get", ret));
        }
        Ok(addr.addr_bytes)
    }

    /// The link state now (`rte_eth_link_get_nowait`).
    pub fn link(&self) -> Result<LinkStatus, PortQueryError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port; link is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.shared.id, &mut link) };
        if ret < 0 {
            return Err(self.query_err("rte_eth_link_get_nowait", ret));
        }
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            duplex: if link.link_duplex() != 0 { Duplex::Full } else { Duplex::Half },
            autoneg: link.link_autoneg() != 0,
        })
    }

    /// Polls the link until it is up or `timeout` passes; returns the last
    /// state seen.
    pub fn wait_link_up(&self, timeout: Duration) -> Result<LinkStatus, PortQueryError> {
        let deadline = Instant::now() + timeout;
        loop {
            let link = self.link()?;
            if link.up || Instant::now() >= deadline {
                return Ok(link);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the device can do.
    pub fn info(&self) -> Result<PortInfo, PortQueryError> {
        let info = dev_info(self.id()).map_err(|errno| PortQueryError::Device {
            port: self.id(),
            op: "rte_eth_dev_info_get",
            errno,
        })?;
        // SAFETY: valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(self.shared.id) };
        Ok(PortInfo {
            driver_name: driver_name(&info),
            if_index: info.if_index,
            socket: u32::try_from(socket).ok(),
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rx_desc_range: (info.rx_desc_lim.nb_min, info.rx_desc_lim.nb_max),
            tx_desc_range: (info.tx_desc_lim.nb_min, info.tx_desc_lim.nb_max),
            rss_offloads: info.flow_type_rss_offloads,
            hash_key_size: info.hash_key_size,
            reta_size: info.reta_size,
            rx_offload_capa: info.rx_offload_capa,
            tx_offload_capa: info.tx_offload_capa,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            max_rx_pktlen: info.max_rx_pktlen,
            speed_capa: info.speed_capa,
        })
    }

    /// The basic counters (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, PortQueryError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out pointer.
        let ret = unsafe { dpdk_sys::rte_eth_stats_get(self.shared.id, &mut s) };
        if ret < 0 {
            return Err(self.query_err("rte_eth_stats_get", ret));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the basic counters (`rte_eth_stats_reset`).
    pub fn reset_stats(&self) -> Result<(), PortQueryError> {
        // SAFETY: valid port.
        let ret = unsafe { dpdk_sys::rte_eth_stats_reset(self.shared.id) };
        if ret < 0 {
            return Err(self.query_err("rte_eth_stats_reset", ret));
        }
        Ok(())
    }

    /// The driver's extended counters as `(name, value)` pairs
    /// (`rte_eth_xstats_get_names` / `rte_eth_xstats_get`).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, PortQueryError> {
        let id = self.shared.id;
        for _attempt in 0..3 {
            // SAFETY: valid port; a NULL array with size 0 asks for the count.
            let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
            if n < 0 {
                return Err(self.query_err("rte_eth_xstats_get_names", n));
            }
            let n = n as usize;
            let mut names = vec![dpdk_sys::rte_eth_xstat_name { name: [0; 64] }; n];
            // SAFETY: names has n entries, as told to the function.
            let got = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
            if got < 0 {
                return Err(self.query_err("rte_eth_xstats_get_names", got));
            }
            let mut values = vec![dpdk_sys::rte_eth_xstat { id: 0, value: 0 }; n];
            // SAFETY: values has n entries, as told to the function.
            let got_v = unsafe { dpdk_sys::rte_eth_xstats_get(id, values.as_mut_ptr(), n as u32) };
            if got_v < 0 {
                return Err(self.query_err("rte_eth_xstats_get", got_v));
            }
            if got as usize > n || got_v as usize > n {
                continue; // the set grew in between: ask again
            }
            let out = values[..got_v as usize]
                .iter()
                .filter_map(|v| {
                    let name = names.get(usize::try_from(v.id).ok()?)?;
                    // SAFETY: DPDK writes NUL-terminated names into the
                    // 64-byte arrays (zeroed beforehand, so a NUL exists).
                    let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                    Some((name.to_string_lossy().into_owned(), v.value))
                })
                .collect();
            return Ok(out);
        }
        Err(PortQueryError::Device { port: self.id(), op: "rte_eth_xstats_get", errno: Errno(libc::EAGAIN) })
    }

    fn check_no_handles(&self) -> Result<(), PortStateError> {
        let count = |flags: &[AtomicBool]| flags.iter().filter(|f| f.load(Ordering::Acquire)).count();
        let (rx, tx) = (count(&self.shared.rx_taken), count(&self.shared.tx_taken));
        if rx + tx > 0 {
            return Err(PortStateError::QueuesInUse { port: self.id(), rx, tx });
        }
        Ok(())
    }

    fn state_err(&self, op: &'static str, ret: i32) -> PortStateError {
        PortStateError::Device { port: self.id(), op, errno: Errno::from_ret(ret) }
    }

    fn query_err(&self, op: &'static str, ret: i32) -> PortQueryError {
        PortQueryError::Device { port: self.id(), op, errno: Errno::from_ret(ret) }
    }
}

fn take(flags: &[AtomicBool], port: PortId, direction: Direction, queue: u16) -> Result<(), QueueError> {
    let Some(flag) = flags.get(usize::from(queue)) else {
        return Err(QueueError::OutOfRange { port, direction, queue, count: flags.len() as u16 });
    };
    if flag.swap(true, Ordering::AcqRel) {
        return Err(QueueError::Taken { port, direction, queue });
    }
    Ok(())
}

fn is_valid_port(id: PortId) -> bool {
    // SAFETY: rte_eth_dev_is_valid_port checks any id against the table.
    unsafe { dpdk_sys::rte_eth_dev_is_valid_port(id.0) != 0 }
}

fn dev_info(id: PortId) -> Result<dpdk_sys::rte_eth_dev_info, Errno> {
    // SAFETY: rte_eth_dev_info is plain C data; all-zero is valid and the
    // function fills it in.
    let mut info: dpdk_sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
    // SAFETY: info is a valid out pointer; the port id is checked by DPDK.
    let ret = unsafe { dpdk_sys::rte_eth_dev_info_get(id.0, &mut info) };
    if ret < 0 {
        return Err(Errno::from_ret(ret));
    }
    Ok(info)
}

fn driver_name(info: &dpdk_sys::rte_eth_dev_info) -> String {
    if info.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: driver_name points to the driver's static NUL-terminated name.
    unsafe { CStr::from_ptr(info.driver_name) }.to_string_lossy().into_owned()
}

fn set_promiscuous(id: PortId, on: bool) -> Result<(), Errno> {
    // SAFETY: the port id is checked by DPDK; no pointers involved.
    let ret = unsafe {
        if on {
            dpdk_sys::rte_eth_promiscuous_enable(id.0)
        } else {
            dpdk_sys::rte_eth_promiscuous_disable(id.0)
        }
    };
    if ret < 0 {
        return Err(Errno::from_ret(ret));
    }
    Ok(())
}
