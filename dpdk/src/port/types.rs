//! Plain data about ports: addresses, link, info, statistics, errors.

use std::fmt;

use crate::errno::Errno;
use crate::ethdev::PortId;

/// Receive or transmit side of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Receive.
    Rx,
    /// Transmit.
    Tx,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        })
    }
}

/// Link duplex mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duplex {
    /// Half duplex.
    Half,
    /// Full duplex.
    Full,
}

/// Link state of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkStatus {
    /// Whether the link is up.
    pub up: bool,
    /// Speed in Mbit/s; 0 if none, `u32::MAX` if unknown (some vdevs).
    pub speed_mbps: u32,
    /// Duplex mode.
    pub duplex: Duplex,
    /// Whether the speed was autonegotiated.
    pub autoneg: bool,
}

/// What a port's device can do (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Driver name, e.g. `net_null`, `net_ice`.
    pub driver_name: String,
    /// Kernel interface index, 0 if none.
    pub if_index: u32,
    /// NUMA socket of the device, `None` if unknown.
    pub socket: Option<u32>,
    /// Maximum receive queues.
    pub max_rx_queues: u16,
    /// Maximum transmit queues.
    pub max_tx_queues: u16,
    /// Receive descriptors per queue: minimum and maximum.
    pub rx_desc_range: (u16, u16),
    /// Transmit descriptors per queue: minimum and maximum.
    pub tx_desc_range: (u16, u16),
    /// RSS hash types supported (`RTE_ETH_RSS_*` bits); 0 means no RSS.
    pub rss_offloads: u64,
    /// RSS hash key length in bytes (0 if not reported).
    pub hash_key_size: u8,
    /// RSS redirection table size.
    pub reta_size: u16,
    /// Receive offload capabilities (`RTE_ETH_RX_OFFLOAD_*` bits).
    pub rx_offload_capa: u64,
    /// Transmit offload capabilities (`RTE_ETH_TX_OFFLOAD_*` bits).
    pub tx_offload_capa: u64,
    /// Smallest MTU accepted.
    pub min_mtu: u16,
    /// Largest MTU accepted.
    pub max_mtu: u16,
    /// Largest receivable frame.
    pub max_rx_pktlen: u32,
    /// Supported speeds (`RTE_ETH_LINK_SPEED_*` bits).
    pub speed_capa: u32,
}

/// Basic port counters (`rte_eth_stats`), totals since start or last reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the hardware because no rx descriptor was free.
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Why [`Port::configure`](crate::Port::configure) failed. The port is left
/// unconfigured by this handle (it may be configured again).
#[derive(Debug, thiserror::Error)]
pub enum PortConfigError {
    /// No such port.
    #[error("{port} does not exist")]
    InvalidPort {
        /// The port.
        port: PortId,
    },
    /// Another live [`Port`](crate::Port) handle already owns this port.
    #[error("{port} is already configured by another Port handle")]
    AlreadyConfigured {
        /// The port.
        port: PortId,
    },
    /// `rte_eth_dev_info_get` failed.
    #[error("cannot read device info of {port}: {errno}")]
    Info {
        /// The port.
        port: PortId,
        /// The error.
        errno: Errno,
    },
    /// Zero queues, or more queues than the device supports.
    #[error("{port} ({driver}): {requested} {direction} queues asked for, 1..={max} supported")]
    QueueCount {
        /// The port.
        port: PortId,
        /// Driver name.
        driver: String,
        /// Which side.
        direction: Direction,
        /// Queues asked for.
        requested: u16,
        /// Maximum supported.
        max: u16,
    },
    /// `rx_pools` must hold one pool (shared) or one per rx queue.
    #[error("{port}: {pools} rx pools given for {rx_queues} rx queues (need 1 or {rx_queues})")]
    PoolCount {
        /// The port.
        port: PortId,
        /// Pools given.
        pools: usize,
        /// Rx queues asked for.
        rx_queues: u16,
    },
    /// Several rx queues need RSS on IPv4/TCP/UDP, which the device lacks.
    #[error(
        "{port} ({driver}) cannot spread {rx_queues} rx queues: no RSS on IPv4/TCP/UDP \
         (device RSS types {supported:#x}); use one rx queue"
    )]
    RssUnsupported {
        /// The port.
        port: PortId,
        /// Driver name.
        driver: String,
        /// Rx queues asked for.
        rx_queues: u16,
        /// The device's `flow_type_rss_offloads`.
        supported: u64,
    },
    /// The RSS key length is not the device's.
    #[error("{port}: RSS key of {len} bytes, the device needs {expected}")]
    RssKeyLength {
        /// The port.
        port: PortId,
        /// Key length given.
        len: usize,
        /// Key length required.
        expected: usize,
    },
    /// The MTU is outside the device's range.
    #[error("{port}: MTU {mtu} outside the device's range {min}..={max}")]
    Mtu {
        /// The port.
        port: PortId,
        /// MTU asked for.
        mtu: u16,
        /// Smallest supported.
        min: u16,
        /// Largest supported.
        max: u16,
    },
    /// A DPDK call failed (`rte_eth_dev_configure`, descriptor adjustment,
    /// promiscuous mode).
    #[error("{port}: {op} failed: {errno}")]
    Device {
        /// The port.
        port: PortId,
        /// The DPDK function.
        op: &'static str,
        /// The error.
        errno: Errno,
    },
    /// Setting up a queue failed (e.g. `ENOMEM`: the pool is too small for the
    /// descriptors, or hugepages ran out).
    #[error("{port}: setting up {direction} queue {queue} failed: {errno}")]
    QueueSetup {
        /// The port.
        port: PortId,
        /// Which side.
        direction: Direction,
        /// The queue.
        queue: u16,
        /// The error.
        errno: Errno,
    },
}

/// Why a start, stop, close, promiscuous or MTU change failed.
#[derive(Debug, thiserror::Error)]
pub enum PortStateError {
    /// Queue handles are still alive (on some lcore); drop them first, so no
    /// lcore polls a queue while the device changes state.
    #[error("{port}: {rx} rx and {tx} tx queue handles still in use")]
    QueuesInUse {
        /// The port.
        port: PortId,
        /// Rx handles alive.
        rx: usize,
        /// Tx handles alive.
        tx: usize,
    },
    /// The DPDK call failed.
    #[error("{port}: {op} failed: {errno}")]
    Device {
        /// The port.
        port: PortId,
        /// The DPDK function.
        op: &'static str,
        /// The error.
        errno: Errno,
    },
}

/// Why reading port information failed.
#[derive(Debug, thiserror::Error)]
pub enum PortQueryError {
    /// The DPDK call failed.
    #[error("{port}: {op} failed: {errno}")]
    Device {
        /// The port.
        port: PortId,
        /// The DPDK function.
        op: &'static str,
        /// The error.
        errno: Errno,
    },
}

/// Why a queue handle could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The port has fewer queues.
    #[error("{port} has {count} {direction} queues; queue {queue} does not exist")]
    OutOfRange {
        /// The port.
        port: PortId,
        /// Which side.
        direction: Direction,
        /// The queue asked for.
        queue: u16,
        /// Queues configured.
        count: u16,
    },
    /// A handle for this queue is alive already (each queue has one owner).
    #[error("{port} {direction} queue {queue} is already taken")]
    Taken {
        /// The port.
        port: PortId,
        /// Which side.
        direction: Direction,
        /// The queue asked for.
        queue: u16,
    },
}
