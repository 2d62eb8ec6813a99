//! The `appliance.toml` files the project itself runs, built from the types: the lab appliance
//! (`make run`), the lab tests' dataplane, the pktgen smoke test and the benchmark. Callers
//! change fields of the [`Appliance`] they get, then write [`Appliance::to_toml`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{
    ApiConfig, Appliance, BeaconSection, CheckKind, CmConfig, DataplaneSection, DriverKind, ExtraListen, HealthSection,
    IdleMode, PortConfig, SwitchProfile, TelnetConfig, User,
};

impl PortConfig {
    /// A port named `name` on DPDK device `device` with address `address` (`A.B.C.D/N`) and
    /// exception-path tap `tap`.
    pub fn new(name: &str, device: &str, address: &str, tap: &str) -> PortConfig {
        PortConfig {
            name: name.to_string(),
            device: device.to_string(),
            address: address.to_string(),
            gateway: None,
            tap: Some(tap.to_string()),
        }
    }
}

/// A dataplane alone: main lcore 0, one worker on lcore 1, switch API at `api_socket`, EAL file
/// prefix `eal_prefix` with its hugepage files unlinked (nothing left behind), on `ports`.
pub fn dataplane(api_socket: &Path, eal_prefix: &str, ports: Vec<PortConfig>) -> Appliance {
    Appliance {
        dataplane: Some(DataplaneSection {
            main_lcore: 0,
            worker_lcores: vec![1],
            api_socket: api_socket.to_path_buf(),
            eal_args: vec![format!("--file-prefix={eal_prefix}"), "--huge-unlink".to_string()],
            ..DataplaneSection::default()
        }),
        ports,
        ..Appliance::default()
    }
}

/// A lab's two ports (`lab/lab.sh` writes them to its `ports.env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabPorts {
    /// Lab prefix: the taps are `{prefix}t0` and `{prefix}t1`.
    pub prefix: String,
    /// Interface of port 0 (clients).
    pub port0_iface: String,
    /// Address of port 0, `A.B.C.D/N`.
    pub port0_addr: String,
    /// Interface of port 1 (real servers).
    pub port1_iface: String,
    /// Address of port 1, `A.B.C.D/N`.
    pub port1_addr: String,
}

/// The DPDK driver of the lab's ports (the veths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LabDriver {
    /// `net_af_packet`: kernel packet sockets (mmap rings), works on any kernel.
    #[default]
    AfPacket,
    /// `net_af_xdp`: XDP sockets on queue 0 (native XDP on veth; one worker).
    AfXdp,
}

impl std::str::FromStr for LabDriver {
    type Err = String;

    /// `af_packet` or `af_xdp`.
    fn from_str(s: &str) -> Result<LabDriver, String> {
        match s {
            "af_packet" => Ok(LabDriver::AfPacket),
            "af_xdp" => Ok(LabDriver::AfXdp),
            other => Err(format!("{other:?} is neither af_packet nor af_xdp")),
        }
    }
}

impl LabDriver {
    /// The vdev string of port `index` on interface `iface`.
    pub fn device(self, index: usize, iface: &str) -> String {
        match self {
            LabDriver::AfPacket => format!("net_af_packet{index},iface={iface}"),
            LabDriver::AfXdp => format!("net_af_xdp{index},iface={iface},start_queue=0,queue_count=1"),
        }
    }
}

impl LabPorts {
    /// Port 0 (`client`) and port 1 (`servers`) on the lab's interfaces through af_packet.
    pub fn ports(&self) -> Vec<PortConfig> {
        self.ports_on(LabDriver::AfPacket)
    }

    /// The same through `driver`.
    pub fn ports_on(&self, driver: LabDriver) -> Vec<PortConfig> {
        let p = &self.prefix;
        vec![
            PortConfig::new("client", &driver.device(0, &self.port0_iface), &self.port0_addr, &format!("{p}t0")),
            PortConfig::new("servers", &driver.device(1, &self.port1_iface), &self.port1_addr, &format!("{p}t1")),
        ]
    }

    /// The tap of port `i`.
    pub fn tap(&self, i: usize) -> String {
        format!("{}t{i}", self.prefix)
    }
}

/// What the lab appliance (`lab/run-appliance.sh`) needs besides its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabAppliance {
    /// The lab's ports.
    pub ports: LabPorts,
    /// The lab's state directory: the sockets and the startup-config go there.
    pub state_dir: PathBuf,
    /// Argon2id hash of the lab password (user `admin` and the enable password).
    pub password_hash: String,
    /// Management telnet address.
    pub telnet: SocketAddr,
    /// The beacon key of switch profile `local`.
    pub beacon_key: String,
    /// Largest Maglev table.
    pub maglev_table_size: usize,
}

/// The lab appliance: the dataplane on the lab's ports and the Connection Manager driving it,
/// with logins, telnet on the management address and on port 23 of both port addresses (bound
/// to each port's tap), L7 health checks out of the servers' tap and beacons on it.
pub fn lab(l: &LabAppliance) -> Appliance {
    let p = &l.ports;
    let mut a = dataplane(&l.state_dir.join("dataplane.sock"), &format!("{}-dataplane", p.prefix), p.ports());
    if let Some(d) = a.dataplane.as_mut() {
        d.flow_capacity = 1 << 20;
        d.maglev_table_size = l.maglev_table_size;
    }
    let extra = |addr: &str, tap: String| -> Option<ExtraListen> {
        let ip = addr.split('/').next()?;
        Some(ExtraListen { address: format!("{ip}:23").parse().ok()?, interface: Some(tap) })
    };
    Appliance {
        enable_secret: Some(l.password_hash.clone()),
        startup_config: Some(l.state_dir.join("startup-config")),
        users: vec![User { name: "admin".into(), password_hash: l.password_hash.clone() }],
        // Port 23 on the port addresses, through the exception path: bound to each port's tap
        // (other labs' taps may hold the same subnets), bound again when a restarted dataplane
        // makes it anew.
        telnet: Some(TelnetConfig {
            listen: l.telnet,
            extra: [extra(&p.port0_addr, p.tap(0)), extra(&p.port1_addr, p.tap(1))].into_iter().flatten().collect(),
            ..TelnetConfig::default()
        }),
        api: Some(ApiConfig { socket: l.state_dir.join("controlplane.sock") }),
        // The local dataplane: its socket is [dataplane] api_socket.
        switches: vec![SwitchProfile::new("local", DriverKind::Dataplane)],
        // add_state "active": an Add takes effect at once (measured to the switch's ack); health
        // checks then take failing servers out ("testing" would hold new bindings until a check
        // passed).
        cm: Some(CmConfig::default()),
        // L7: GET / must answer 2xx/3xx; 2 failures in a row (<= 0.6 s) take a server out.
        health: Some(HealthSection {
            check: Some(CheckKind::L7),
            http_path: Some("/".into()),
            interval_ms: Some(300),
            timeout_ms: Some(250),
            interface: Some(p.tap(1)),
            ..HealthSection::default()
        }),
        beacon: Some(BeaconSection {
            interfaces: vec![p.tap(1)],
            keys: [("local".to_string(), l.beacon_key.clone())].into(),
            ..BeaconSection::default()
        }),
        ..a
    }
}

/// What the benchmark's device under test needs (`scripts/bench.sh`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    /// Main lcore.
    pub main_lcore: u32,
    /// Worker lcores.
    pub worker_lcores: Vec<u32>,
    /// Switch API socket.
    pub api_socket: PathBuf,
    /// The run's id: EAL file prefix `bench-dp-{id}`, taps `bc{id}` and `bs{id}`.
    pub id: String,
    /// DPDK device of the client port.
    pub client_device: String,
    /// DPDK device of the server port.
    pub server_device: String,
    /// `[dataplane] idle` of the device under test.
    pub idle: IdleMode,
}

/// The benchmark's dataplane: 2 Mi flows, clients on 198.18.0.0/16, servers on 198.19.0.0/16,
/// and SYN-only flows gone after 1 s (new-connection runs open a flow per packet).
pub fn bench(b: &Bench) -> Appliance {
    let ports = vec![
        PortConfig::new("client", &b.client_device, "198.18.0.1/16", &format!("bc{}", b.id)),
        PortConfig::new("server", &b.server_device, "198.19.0.1/16", &format!("bs{}", b.id)),
    ];
    let mut a = dataplane(&b.api_socket, &format!("bench-dp-{}", b.id), ports);
    if let Some(d) = a.dataplane.as_mut() {
        d.main_lcore = b.main_lcore;
        d.worker_lcores.clone_from(&b.worker_lcores);
        d.flow_capacity = 2 << 20;
        d.idle = b.idle;
    }
    a.timeouts = Some(crate::Timeouts { tcp_syn: 1.0, ..crate::Timeouts::default() });
    a
}
