//! The ACM primitives on a command line: one clap definition for every client that sends them
//! (`acmctl` to the Connection Manager, `dpctl` to the dataplane), and the table List prints.
//! A binary flattens [`PrimitiveCmd`] into its own subcommands.

use acm::{BindingInfo, BindingKey, BindingParams, DropFraction, Primitive, RealServer, ServiceKey};
use clap::Subcommand;

/// Add, Remove, Force Remove, Drop and List as subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum PrimitiveCmd {
    /// Bind a real server to a virtual service: `add 10.0.0.100:80 10.0.1.11:80`.
    Add {
        /// VIP:PORT[/udp].
        service: ServiceKey,
        /// RIP:PORT.
        real: RealServer,
        /// Relative share of new flows (0-65000).
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Source-NAT the client to the appliance's address (one-arm).
        #[arg(long)]
        source_nat: bool,
    },
    /// Drain a binding: no new flows, existing flows finish.
    Remove {
        /// VIP:PORT[/udp].
        service: ServiceKey,
        /// RIP:PORT.
        real: RealServer,
    },
    /// Unbind now; existing TCP flows are reset.
    ForceRemove {
        /// VIP:PORT[/udp].
        service: ServiceKey,
        /// RIP:PORT.
        real: RealServer,
    },
    /// Drop a fraction (0.0-1.0) of new connections to a virtual service.
    Drop {
        /// VIP:PORT[/udp].
        service: ServiceKey,
        /// Fraction of new connections to refuse.
        #[arg(value_parser = parse_fraction, allow_negative_numbers = true)]
        fraction: DropFraction,
    },
    /// Every binding with state and counters.
    List,
}

impl PrimitiveCmd {
    /// The primitive the subcommand asks for.
    pub fn primitive(&self) -> Primitive {
        let key = |service: &ServiceKey, real: &RealServer| BindingKey { service: *service, real: *real };
        match self {
            PrimitiveCmd::Add { service, real, weight, source_nat } => Primitive::Add {
                key: key(service, real),
                params: BindingParams { weight: *weight, source_nat: *source_nat },
            },
            PrimitiveCmd::Remove { service, real } => Primitive::Remove { key: key(service, real) },
            PrimitiveCmd::ForceRemove { service, real } => Primitive::ForceRemove { key: key(service, real) },
            PrimitiveCmd::Drop { service, fraction } => Primitive::Drop { service: *service, fraction: *fraction },
            PrimitiveCmd::List => Primitive::List,
        }
    }
}

/// The human form of a List answer: a header, a row per binding, or `(no bindings)`.
pub fn bindings_table(list: &[BindingInfo]) -> Vec<String> {
    let row = |c: [&str; 9]| {
        format!(
            "{:<22} {:<22} {:<5} {:>6} {:<4} {:>8} {:>8} {:>10} {:>10}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
        )
    };
    let mut lines =
        vec![row(["Service", "Real server", "State", "Weight", "SNAT", "Flows", "New", "PktsIn", "PktsOut"])];
    for b in list {
        let k = &b.counters;
        lines.push(row([
            &b.key.service.to_string(),
            &b.key.real.to_string(),
            b.state.abbrev(),
            &b.params.weight.to_string(),
            if b.params.source_nat { "yes" } else { "no" },
            &k.active_flows.to_string(),
            &k.new_flows.to_string(),
            &k.packets_in.to_string(),
            &k.packets_out.to_string(),
        ]));
    }
    if list.is_empty() {
        lines.push("(no bindings)".into());
    }
    lines
}

fn parse_fraction(s: &str) -> Result<DropFraction, String> {
    let f: f64 = s.parse().map_err(|e| format!("{e}"))?;
    DropFraction::new(f).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: PrimitiveCmd,
    }

    fn parse(args: &[&str]) -> Result<Primitive, clap::Error> {
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied())).map(|c| c.cmd.primitive())
    }

    #[test]
    fn each_subcommand_is_its_primitive() {
        let key = BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: "10.0.1.11:80".parse().unwrap() };
        let add = parse(&["add", "10.0.0.100:80", "10.0.1.11:80", "--weight", "3", "--source-nat"]).unwrap();
        assert_eq!(add, Primitive::Add { key, params: BindingParams { weight: 3, source_nat: true } });
        assert_eq!(parse(&["remove", "10.0.0.100:80", "10.0.1.11:80"]).unwrap(), Primitive::Remove { key });
        assert_eq!(parse(&["force-remove", "10.0.0.100:80", "10.0.1.11:80"]).unwrap(), Primitive::ForceRemove { key });
        let drop = parse(&["drop", "10.0.0.100:80", "0.25"]).unwrap();
        assert_eq!(drop, Primitive::Drop { service: key.service, fraction: DropFraction::new(0.25).unwrap() });
        assert_eq!(parse(&["list"]).unwrap(), Primitive::List);
    }

    #[test]
    fn the_bindings_table_has_a_row_per_binding() {
        assert_eq!(bindings_table(&[])[1], "(no bindings)");
        let key = BindingKey { service: "10.0.0.100:80".parse().unwrap(), real: "10.0.1.11:80".parse().unwrap() };
        let counters =
            acm::BindingCounters { packets_in: 5, packets_out: 4, new_flows: 1, active_flows: 1, ..Default::default() };
        let params = BindingParams { weight: 2, source_nat: true };
        let b = BindingInfo { key, params, state: acm::BindingState::Active, counters };
        let t = bindings_table(&[b]);
        assert_eq!(t.len(), 2);
        let cells: Vec<&str> = t[1].split_whitespace().collect();
        assert_eq!(cells, ["10.0.0.100:80/tcp", "10.0.1.11:80", "ACT", "2", "yes", "1", "1", "5", "4"]);
    }

    #[test]
    fn a_fraction_out_of_range_is_a_usage_error() {
        for bad in ["1.5", "-0.1", "lots"] {
            let e = parse(&["drop", "10.0.0.100:80", bad]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}: {e}");
        }
    }
}

/// Makes a command-line tool end quietly when its standard output is closed (`acmctl list |
/// head`), as `ls | head` does: Rust ignores SIGPIPE, so `println!` to a closed pipe panics
/// with a backtrace. A panic whose message is that failure exits with status 141 (128 +
/// SIGPIPE, what a shell reports for a tool killed by the signal) and prints nothing; any other
/// panic goes to the previous hook unchanged. Call first thing in `main`.
pub fn quiet_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_stdout(message) {
            #[allow(clippy::exit, reason = "the tool's output is gone: nothing is left to do or say")]
            std::process::exit(141);
        }
        previous(info);
    }));
}

/// Whether a panic message is `println!`'s failure on a closed pipe.
fn is_closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}

#[cfg(test)]
mod closed_stdout_tests {
    use super::is_closed_stdout;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(is_closed_stdout("failed printing to stdout: Broken pipe (os error 32)"));
        assert!(!is_closed_stdout("failed printing to stdout: No space left on device (os error 28)"));
        assert!(!is_closed_stdout("index out of bounds"));
    }
}
