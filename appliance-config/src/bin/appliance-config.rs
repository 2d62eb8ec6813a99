//! Prints an `appliance.toml` built from the config types, for the shell scripts:
//!
//! ```text
//! appliance-config lab --prefix acm --state /run/acm-lab/acm --port0 acmp0 --port0-addr 10.0.0.1/24 \
//!     --port1 acmp1 --port1-addr 10.0.1.1/24 --password-hash '$argon2id$...' --beacon-key KEY \
//!     [--port-driver af_xdp]
//! appliance-config bench --main-lcore 0 --workers 1,2 --api /tmp/x/api.sock --id abc123 \
//!     --client-dev net_memif0,... --server-dev net_memif1,... [--idle busy]
//! appliance-config check appliance.toml      # both processes' checks, without starting them
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use appliance_config::presets::{self, Bench, LabAppliance, LabDriver, LabPorts};
use appliance_config::{Appliance, IdleMode};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Writes (or checks) appliance.toml from the config types")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// The lab appliance (lab/run-appliance.sh): dataplane and Connection Manager.
    Lab {
        /// Lab prefix (taps `PREFIXt0`, `PREFIXt1`; EAL file prefix `PREFIX-dataplane`).
        #[arg(long)]
        prefix: String,
        /// The lab's state directory (sockets, startup-config).
        #[arg(long)]
        state: PathBuf,
        /// Interface of port 0 (clients).
        #[arg(long)]
        port0: String,
        /// Address of port 0, A.B.C.D/N.
        #[arg(long)]
        port0_addr: String,
        /// Interface of port 1 (real servers).
        #[arg(long)]
        port1: String,
        /// Address of port 1, A.B.C.D/N.
        #[arg(long)]
        port1_addr: String,
        /// Argon2id hash of the lab password (acm-hash-password).
        #[arg(long)]
        password_hash: String,
        /// Management telnet address.
        #[arg(long, default_value = "127.0.0.1:2323")]
        telnet: SocketAddr,
        /// Beacon key of switch profile `local`.
        #[arg(long)]
        beacon_key: String,
        /// Largest Maglev table (prime).
        #[arg(long, default_value_t = 65537)]
        maglev_table_size: usize,
        /// DPDK driver of the ports: af_packet or af_xdp.
        #[arg(long, default_value = "af_packet")]
        port_driver: LabDriver,
    },
    /// The benchmark's device under test (scripts/bench.sh).
    Bench {
        /// Main lcore.
        #[arg(long)]
        main_lcore: u32,
        /// Worker lcores, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        workers: Vec<u32>,
        /// Switch API socket.
        #[arg(long)]
        api: PathBuf,
        /// The run's id (EAL file prefix, tap names).
        #[arg(long)]
        id: String,
        /// DPDK device of the client port.
        #[arg(long)]
        client_dev: String,
        /// DPDK device of the server port.
        #[arg(long)]
        server_dev: String,
        /// `[dataplane] idle` of the device under test: adaptive or busy.
        #[arg(long, default_value = "adaptive")]
        idle: IdleMode,
    },
    /// Checks a file as both processes would (types, then each part's values).
    Check {
        /// The file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let a = match Args::parse().what {
        What::Lab {
            prefix,
            state,
            port0,
            port0_addr,
            port1,
            port1_addr,
            password_hash,
            telnet,
            beacon_key,
            maglev_table_size,
            port_driver,
        } => {
            let ports = LabPorts { prefix, port0_iface: port0, port0_addr, port1_iface: port1, port1_addr };
            let on_driver = ports.ports_on(port_driver);
            let mut a = presets::lab(&LabAppliance {
                ports,
                state_dir: state,
                password_hash,
                telnet,
                beacon_key,
                maglev_table_size,
            });
            a.ports = on_driver;
            a
        }
        What::Bench { main_lcore, workers, api, id, client_dev, server_dev, idle } => presets::bench(&Bench {
            main_lcore,
            worker_lcores: workers,
            api_socket: api,
            id,
            client_device: client_dev,
            server_device: server_dev,
            idle,
        }),
        What::Check { file } => {
            let checked = Appliance::load(&file).and_then(|a| {
                a.dataplane_config().map_err(|e| e.in_file(&file))?;
                a.controlplane_config().map_err(|e| e.in_file(&file))
            });
            return match checked {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("appliance-config: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    // What is written is what the processes will read: check it the same way.
    let path = PathBuf::from("<generated>");
    if let Err(e) = a.dataplane_config().and_then(|_| a.controlplane_config().map(drop)) {
        eprintln!("appliance-config: {}", e.in_file(&path));
        return ExitCode::FAILURE;
    }
    print!("# Generated by appliance-config (the appliance-config crate's types).\n{}", a.to_toml());
    ExitCode::SUCCESS
}
