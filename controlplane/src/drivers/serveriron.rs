//! ServerIron-CLI devices over telnet — a Foundry ServerIron, or another appliance of ours —
//! driven the way COMICS drove Foundry switches: log in, `enable`, `configure terminal`, issue
//! `server real` / `port` / `server virtual` / `bind` / `no bind` commands, and read the
//! bindings back from `show server bind` (and the flows from `show server sessions`, in this
//! appliance's format).
//!
//! Names: the device's own names are reused (learned from `show running-config`); a real server
//! or VIP the device does not know yet is created as `acm-A-B-C-D`. Weight and source NAT are
//! per real server on a ServerIron, so an Add sets them on the real server. Remove is `no bind`
//! (the device drains); ForceRemove wraps it in `server force-delete` … `no server
//! force-delete`; Drop is `port N drop-fraction F` (this appliance's extension). UDP services
//! are refused: the ServerIron language here has no protocol keyword.
//!
//! Every failure to talk (connect, login, timeout, closed connection) drops the session and
//! answers [`DriverError::Unavailable`]; the next call logs in again. An error the device prints
//! (`Error …`, `Invalid input …`) is a refusal.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use acm::{AcmError, BindingCounters, BindingInfo, BindingKey, BindingParams, BindingState, Primitive, Proto};

use crate::cm::switch::{DriverAck, DriverError, SwitchDriver, SwitchView};
use crate::config::SwitchProfile;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;

/// A logged-in telnet session in privileged mode.
struct Session {
    stream: TcpStream,
    timeout: Duration,
    /// Telnet parser state carried across reads.
    iac: IacState,
}

#[derive(Clone, Copy, PartialEq)]
enum IacState {
    Data,
    Iac,
    Opt(u8),
    Sb,
    SbIac,
}

fn unavailable(what: impl std::fmt::Display) -> DriverError {
    DriverError::Unavailable(what.to_string())
}

/// Does `text` end in a CLI prompt (`NAME>`, `NAME#`, `NAME(config…)#`) or a password prompt?
fn ends_in_prompt(text: &str) -> bool {
    let last = text.rsplit(['\n', '\r']).next().unwrap_or("").trim_end();
    (last.ends_with('#') || last.ends_with('>')) && !last.contains(' ') && last.len() > 1
}

impl Session {
    /// Reads until `done(text)` holds; answers option negotiation (refusing everything) and
    /// pages through `--More--`.
    fn read_until(&mut self, done: &dyn Fn(&str) -> bool) -> Result<String, DriverError> {
        let end = Instant::now() + self.timeout;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(unavailable(format!("no prompt within {:?}; got {:?}", self.timeout, tail(&text))));
            }
            self.stream.set_read_timeout(Some(left)).map_err(unavailable)?;
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return Err(unavailable("the device closed the connection")),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(unavailable(e)),
            };
            let mut reply = Vec::new();
            for &b in &buf[..n] {
                self.iac = match (self.iac, b) {
                    (IacState::Data, IAC) => IacState::Iac,
                    (IacState::Data, b) => {
                        if b != 0 {
                            text.push(b as char);
                        }
                        IacState::Data
                    }
                    (IacState::Iac, IAC) => {
                        text.push(IAC as char);
                        IacState::Data
                    }
                    (IacState::Iac, DO | DONT | WILL | WONT) => IacState::Opt(b),
                    (IacState::Iac, SB) => IacState::Sb,
                    (IacState::Iac, _) => IacState::Data,
                    (IacState::Opt(cmd), opt) => {
                        match cmd {
                            DO => reply.extend_from_slice(&[IAC, WONT, opt]),
                            WILL => reply.extend_from_slice(&[IAC, DONT, opt]),
                            _ => {}
                        }
                        IacState::Data
                    }
                    (IacState::Sb, IAC) => IacState::SbIac,
                    (IacState::Sb, _) => IacState::Sb,
                    (IacState::SbIac, SE) => IacState::Data,
                    (IacState::SbIac, _) => IacState::Sb,
                };
            }
            if !reply.is_empty() {
                self.stream.write_all(&reply).map_err(unavailable)?;
            }
            if text.ends_with("Control-c") || text.trim_end().ends_with("--More--") {
                self.stream.write_all(b" ").map_err(unavailable)?;
                continue;
            }
            if done(&text) {
                return Ok(text);
            }
        }
    }

    fn send(&mut self, line: &str) -> Result<(), DriverError> {
        self.stream.write_all(format!("{line}\r\n").as_bytes()).map_err(unavailable)
    }

    /// Sends one command and returns its output (without the prompt).
    fn command(&mut self, line: &str) -> Result<String, DriverError> {
        self.send(line)?;
        let out = self.read_until(&ends_in_prompt)?;
        Ok(out)
    }

    fn login(
        addr: &str,
        user: &str,
        password: &str,
        enable: Option<&str>,
        timeout: Duration,
    ) -> Result<Session, DriverError> {
        let sa = addr
            .to_socket_addrs()
            .map_err(|e| unavailable(format!("{addr}: {e}")))?
            .next()
            .ok_or_else(|| unavailable(format!("{addr}: no address")))?;
        let stream = TcpStream::connect_timeout(&sa, timeout).map_err(|e| unavailable(format!("{addr}: {e}")))?;
        stream.set_write_timeout(Some(timeout)).map_err(unavailable)?;
        let _ = stream.set_nodelay(true);
        let mut s = Session { stream, timeout, iac: IacState::Data };
        let lower_ends = |t: &str, pats: &[&str]| {
            let l = t.trim_end().to_ascii_lowercase();
            pats.iter().any(|p| l.ends_with(p))
        };
        s.read_until(&|t| lower_ends(t, &["login name:", "username:", "login:"]))?;
        s.send(user)?;
        s.read_until(&|t| lower_ends(t, &["password:"]))?;
        s.send(password)?;
        let out = s.read_until(&|t| ends_in_prompt(t) || t.to_ascii_lowercase().contains("incorrect"))?;
        if !ends_in_prompt(&out) {
            return Err(unavailable(format!("login refused: {}", tail(&out))));
        }
        if !out.trim_end().ends_with('#') {
            s.send("enable")?;
            let out = s.read_until(&|t| ends_in_prompt(t) || lower_ends(t, &["password:"]))?;
            if !ends_in_prompt(&out) {
                s.send(enable.unwrap_or(password))?;
                let out = s.read_until(&ends_in_prompt)?;
                if !out.trim_end().ends_with('#') {
                    return Err(unavailable(format!("enable refused: {}", tail(&out))));
                }
            }
        }
        s.command("skip-page-display")?;
        Ok(s)
    }
}

fn tail(t: &str) -> String {
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// The first error line a command printed, if any.
fn device_error(out: &str) -> Option<String> {
    out.lines()
        .map(str::trim)
        .find(|l| {
            l.starts_with("Error")
                || l.starts_with("Invalid input")
                || l.starts_with("Incomplete command")
                || l.starts_with("Ambiguous input")
        })
        .map(str::to_string)
}

/// Drives a ServerIron-CLI device over telnet.
pub struct ServerIronDriver {
    address: String,
    username: String,
    password: String,
    enable_password: Option<String>,
    timeout: Duration,
    session: Option<Session>,
    reals: HashMap<Ipv4Addr, String>,
    virtuals: HashMap<Ipv4Addr, String>,
    params: HashMap<BindingKey, BindingParams>,
}

impl ServerIronDriver {
    /// From a switch profile (checked by the config loader).
    pub fn from_profile(p: &SwitchProfile) -> ServerIronDriver {
        ServerIronDriver::new(
            p.address.clone().unwrap_or_default(),
            p.username.clone().unwrap_or_default(),
            p.password.clone().unwrap_or_default(),
            p.enable_password.clone(),
            Duration::from_millis(p.timeout_ms),
        )
    }

    /// A driver for the device at `address` (`host:port`).
    pub fn new(
        address: String,
        username: String,
        password: String,
        enable_password: Option<String>,
        timeout: Duration,
    ) -> ServerIronDriver {
        ServerIronDriver {
            address,
            username,
            password,
            enable_password,
            timeout,
            session: None,
            reals: HashMap::new(),
            virtuals: HashMap::new(),
            params: HashMap::new(),
        }
    }

    fn session(&mut self) -> Result<&mut Session, DriverError> {
        if self.session.is_none() {
            let s = Session::login(
                &self.address,
                &self.username,
                &self.password,
                self.enable_password.as_deref(),
                self.timeout,
            )?;
            self.session = Some(s);
            self.learn_names()?;
        }
        Ok(self.session.as_mut().expect("logged in"))
    }

    /// Runs commands; any transport failure drops the session.
    fn run(&mut self, lines: &[String]) -> Result<String, DriverError> {
        let mut all = String::new();
        for l in lines {
            let r = self.session().and_then(|s| s.command(l));
            match r {
                Ok(out) => {
                    if let Some(e) = device_error(&out) {
                        // Leave configuration mode before reporting.
                        if let Some(s) = self.session.as_mut() {
                            if s.command("end").is_err() {
                                self.session = None;
                            }
                        }
                        return Err(DriverError::Refused(AcmError::Parse(format!("device said on {l:?}: {e}"))));
                    }
                    all.push_str(&out);
                }
                Err(e) => {
                    self.session = None;
                    return Err(e);
                }
            }
        }
        Ok(all)
    }

    fn learn_names(&mut self) -> Result<(), DriverError> {
        let s = self.session.as_mut().expect("logged in");
        let out = match s.command("show running-config") {
            Ok(o) => o,
            Err(e) => {
                self.session = None;
                return Err(e);
            }
        };
        for line in out.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["server", "real" | "real-name", name, ip, ..] => {
                    if let Ok(ip) = ip.parse() {
                        self.reals.insert(ip, name.to_string());
                    }
                }
                ["server", "virtual" | "virtual-name-or-ip", name, ip, ..] => {
                    if let Ok(ip) = ip.parse() {
                        self.virtuals.insert(ip, name.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn real_name(&mut self, ip: Ipv4Addr) -> String {
        self.reals.entry(ip).or_insert_with(|| format!("acm-{}", ip.to_string().replace('.', "-"))).clone()
    }

    fn virtual_name(&mut self, ip: Ipv4Addr) -> String {
        self.virtuals.entry(ip).or_insert_with(|| format!("acm-vip-{}", ip.to_string().replace('.', "-"))).clone()
    }

    fn commands(&mut self, op: &Primitive) -> Result<Vec<String>, DriverError> {
        let port = cli::grammar::port_name;
        let check_tcp = |p: Proto| {
            if p == Proto::Udp {
                Err(DriverError::Refused(AcmError::Parse(
                    "the serveriron-telnet driver serves TCP services only".into(),
                )))
            } else {
                Ok(())
            }
        };
        let mut c = vec!["configure terminal".to_string()];
        match *op {
            Primitive::Add { key, params } => {
                check_tcp(key.service.proto)?;
                params.validate()?;
                let (r, v) = (self.real_name(key.real.rip), self.virtual_name(key.service.vip));
                c.push(format!("server real {r} {}", key.real.rip));
                c.push(format!("port {}", port(key.real.rport)));
                c.push(format!("weight {}", params.weight));
                c.push(if params.source_nat { "source-nat".into() } else { "no source-nat".into() });
                c.push("exit".into());
                c.push(format!("server virtual {v} {}", key.service.vip));
                c.push(format!("port {}", port(key.service.vport)));
                c.push(format!("bind {} {r} {}", port(key.service.vport), port(key.real.rport)));
            }
            Primitive::Remove { key } | Primitive::ForceRemove { key } => {
                check_tcp(key.service.proto)?;
                let (r, v) = (self.real_name(key.real.rip), self.virtual_name(key.service.vip));
                let force = matches!(op, Primitive::ForceRemove { .. });
                if force {
                    c.push("server force-delete".into());
                }
                c.push(format!("server virtual {v} {}", key.service.vip));
                c.push(format!("no bind {} {r} {}", port(key.service.vport), port(key.real.rport)));
                if force {
                    c.push("exit".into());
                    c.push("no server force-delete".into());
                }
            }
            Primitive::Drop { service, fraction } => {
                check_tcp(service.proto)?;
                let v = self.virtual_name(service.vip);
                c.push(format!("server virtual {v} {}", service.vip));
                if fraction.get() == 0.0 {
                    c.push(format!("no port {} drop-fraction", port(service.vport)));
                } else {
                    c.push(format!("port {} drop-fraction {}", port(service.vport), fraction.get()));
                }
            }
            Primitive::List => return Ok(Vec::new()),
        }
        c.push("end".into());
        Ok(c)
    }
}

/// Parses `show server sessions` as this appliance prints it: `Sessions: N` (or
/// `Sessions: N (M shown)`), then rows `PROTO CLIENT:PORT VIP:PORT REAL:PORT STATE IDLE LEFT`.
/// Lines in any other shape are skipped (a device with another format gives no rows).
pub fn parse_show_sessions(text: &str) -> cli::SessionTable {
    let mut t = cli::SessionTable::default();
    let addr = |w: &str| -> Option<(Ipv4Addr, u16)> {
        let (ip, port) = w.rsplit_once(':')?;
        Some((ip.parse().ok()?, port.parse().ok()?))
    };
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("Sessions:") {
            t.total = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        let [proto, client, vip, real, state, idle, left] = w[..] else { continue };
        let proto = match proto {
            "TCP" => Proto::Tcp,
            "UDP" => Proto::Udp,
            _ => continue,
        };
        let (Some(c), Some(v), Some(r), Ok(idle_s), Ok(expires_s)) =
            (addr(client), addr(vip), addr(real), idle.parse(), left.parse())
        else {
            continue;
        };
        t.rows.push(cli::SessionRow {
            client: c.0,
            client_port: c.1,
            vip: v.0,
            vport: v.1,
            real: r.0,
            rport: r.1,
            proto,
            state: state.to_string(),
            idle_s,
            expires_s,
        });
    }
    t.total = t.total.max(t.rows.len() as u64);
    t
}

/// Parses `show server bind` into bindings (ACT → Active, GDN → Draining, TST/FAL/DIS as such;
/// UNB and `(none)` are not bindings).
pub fn parse_show_bind(text: &str) -> Vec<BindingInfo> {
    let mut out = Vec::new();
    let mut vip: Option<Ipv4Addr> = None;
    let mut vport: Option<u16> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Virtual server:") {
            vip = rest.rsplit("IP:").next().and_then(|s| s.trim().parse().ok());
            vport = None;
            continue;
        }
        let entry = if let Some((head, rest)) = t.split_once("------->") {
            vport = cli::grammar::parse_port(head.trim());
            rest.trim()
        } else {
            t
        };
        // "NAME: IP, PORT (STATE)"
        let (Some(v), Some(vp)) = (vip, vport) else { continue };
        let Some((_, rest)) = entry.split_once(": ") else { continue };
        let Some((ip, rest)) = rest.split_once(", ") else { continue };
        let Some((rport, state)) = rest.rsplit_once(" (") else { continue };
        let state = match state.trim_end_matches(')') {
            "ACT" => BindingState::Active,
            "GDN" => BindingState::Draining,
            "TST" => BindingState::Testing,
            "FAL" => BindingState::Failed,
            "DIS" => BindingState::Disabled,
            _ => continue,
        };
        let (Ok(rip), Some(rp)) = (ip.trim().parse(), cli::grammar::parse_port(rport.trim())) else { continue };
        out.push(BindingInfo {
            key: BindingKey {
                service: acm::ServiceKey { vip: v, proto: Proto::Tcp, vport: vp },
                real: acm::RealServer { rip, rport: rp },
            },
            params: BindingParams::default(),
            state,
            counters: BindingCounters::default(),
        });
    }
    out
}

impl SwitchDriver for ServerIronDriver {
    fn apply(&mut self, op: &Primitive) -> Result<DriverAck, DriverError> {
        self.session()?; // logs in and learns the device's names first
        let lines = self.commands(op)?;
        self.run(&lines)?;
        match *op {
            Primitive::Add { key, params } => {
                self.params.insert(key, params);
            }
            Primitive::ForceRemove { key } => {
                self.params.remove(&key);
            }
            _ => {}
        }
        Ok(DriverAck { changed: true, switch_ns: None })
    }

    fn list(&mut self) -> Result<SwitchView, DriverError> {
        let out = self.run(&["show server bind".to_string()])?;
        let mut bindings = parse_show_bind(&out);
        for b in &mut bindings {
            if let Some(p) = self.params.get(&b.key) {
                b.params = *p;
            }
        }
        Ok(SwitchView { bindings, drops: None })
    }

    fn sessions(&mut self, limit: u32) -> Result<Option<cli::SessionTable>, DriverError> {
        let out = self.run(&["show server sessions".to_string()])?;
        let mut t = parse_show_sessions(&out);
        t.rows.truncate(limit as usize);
        Ok(Some(t))
    }

    fn describe(&self) -> String {
        format!("ServerIron CLI over telnet at {} (user {})", self.address, self.username)
    }
}

#[cfg(test)]
#[path = "serveriron_tests.rs"]
mod tests;
