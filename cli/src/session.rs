//! One administrator's session: modes, enable state, paging and history, and the execution of
//! parsed commands against the shared [`SlbConfig`] and a [`Backend`].
//!
//! Every configuration command edits the model and then calls [`crate::apply::apply_diff`]: the bindings the
//! configuration asked for before and after the edit are compared and the difference goes to the
//! switch as ACM primitives (Remove, or ForceRemove under `server force-delete`, then Add, then
//! Drop). So `weight`, `source-nat`, `port N disable`, `no bind`, `no server real` and replays of a
//! startup-config all reach the switch the same way.

use std::sync::OnceLock;

use crate::apply::apply_diff;
use crate::auth;
use crate::backend::Backend;
use crate::config::{
    Bind, Predictor, RealPort, RealServerCfg, SlbConfig, VirtualPort, VirtualServerCfg, DEFAULT_HOSTNAME,
    DEFAULT_MAX_CONN, DEFAULT_WEIGHT,
};
use crate::grammar::{port_name, Cmd, Grammar, Parsed};
use crate::mode::{Mode, ModeKind};
use crate::show;

/// The grammar, built once.
pub fn grammar() -> &'static Grammar {
    static G: OnceLock<Grammar> = OnceLock::new();
    G.get_or_init(Grammar::new)
}

/// Page display setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Page by the terminal's height (NAWS), 24 lines if unknown.
    Auto,
    /// `skip-page-display` / `terminal length 0`.
    Off,
    /// `terminal length N`.
    Lines(u16),
}

/// What a command produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Lines to print (no line endings).
    pub lines: Vec<String>,
    /// The session ends.
    pub quit: bool,
}

impl Output {
    fn lines(lines: Vec<String>) -> Output {
        Output { lines, quit: false }
    }
    fn line(s: impl Into<String>) -> Output {
        Output::lines(vec![s.into()])
    }
}

/// How a session starts.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// PHC hash of the enable password ([`crate::auth::hash_password`]); `None`: `enable` asks
    /// for nothing.
    pub enable_secret: Option<String>,
    /// Start in privileged mode (startup-config replay, local consoles).
    pub privileged: bool,
}

/// Largest number of lines kept in the history.
pub const HISTORY: usize = 50;

/// A sans-IO CLI session.
#[derive(Debug, Clone)]
pub struct Session {
    pub(crate) mode: Mode,
    opts: SessionOptions,
    awaiting_enable: bool,
    paging: Paging,
    history: Vec<String>,
}

impl Session {
    /// A session in user EXEC mode (or privileged, per `opts`).
    pub fn new(opts: SessionOptions) -> Session {
        let mode = if opts.privileged { Mode::Privileged } else { Mode::User };
        Session { mode, opts, awaiting_enable: false, paging: Paging::Auto, history: Vec::new() }
    }

    /// The current mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The page display setting.
    pub fn paging(&self) -> Paging {
        self.paging
    }

    /// Lines executed, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// The next line is a password (do not echo, do not keep in history).
    pub fn password_mode(&self) -> bool {
        self.awaiting_enable
    }

    /// The prompt to print before the next line.
    pub fn prompt(&self, cfg: &SlbConfig) -> String {
        if self.awaiting_enable {
            return "Password:".into();
        }
        let h = &cfg.hostname;
        match &self.mode {
            Mode::User => format!("{h}>"),
            Mode::Privileged => format!("{h}#"),
            Mode::Config => format!("{h}(config)#"),
            Mode::RealServer(n) => format!("{h}(config-rs-{n})#"),
            Mode::VirtualServer(n) => format!("{h}(config-vs-{n})#"),
        }
    }

    /// `?` help for the text typed so far.
    pub fn help(&self, partial: &str) -> Vec<String> {
        grammar().help(self.mode.kind(), partial)
    }

    /// Tab completion: text to append, or `None` to beep.
    pub fn complete(&self, partial: &str) -> Option<String> {
        grammar().complete(self.mode.kind(), partial)
    }

    /// Executes one line.
    pub fn execute(&mut self, line: &str, cfg: &mut SlbConfig, backend: &mut dyn Backend) -> Output {
        if self.awaiting_enable {
            self.awaiting_enable = false;
            let ok = self.opts.enable_secret.as_deref().is_some_and(|h| auth::verify_password(h, line));
            return if ok {
                self.mode = Mode::Privileged;
                Output::default()
            } else {
                Output::line("Error - Incorrect username or password.")
            };
        }
        // Every non-blank line is kept, mistakes included, so that Up recalls it for fixing.
        let trimmed = line.trim();
        if !trimmed.is_empty() && self.history.last().map(String::as_str) != Some(trimmed) {
            self.history.push(trimmed.to_string());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        let parsed = match grammar().parse(self.mode.kind(), line) {
            Ok(Some(p)) => p,
            Ok(None) => return Output::default(),
            Err(e) => return Output::lines(e.lines()),
        };
        if parsed.mode == ModeKind::Config && self.mode.kind() != ModeKind::Config && switches_mode(parsed.cmd) {
            // A config-level command typed in a sub-mode: run it at config level, as the device
            // does. (show, write and paging commands leave the mode alone.)
            self.mode = Mode::Config;
        }
        self.run(&parsed, cfg, backend)
    }

    fn run(&mut self, p: &Parsed, cfg: &mut SlbConfig, backend: &mut dyn Backend) -> Output {
        use Cmd::*;
        match p.cmd {
            Enable => {
                if self.opts.enable_secret.is_some() {
                    self.awaiting_enable = true;
                } else {
                    self.mode = Mode::Privileged;
                }
                Output::default()
            }
            Disable => {
                self.mode = Mode::User;
                Output::default()
            }
            Exit => {
                match self.mode {
                    Mode::User | Mode::Privileged => return Output { lines: Vec::new(), quit: true },
                    Mode::Config => self.mode = Mode::Privileged,
                    Mode::RealServer(_) | Mode::VirtualServer(_) => self.mode = Mode::Config,
                }
                Output::default()
            }
            End => {
                self.mode = Mode::Privileged;
                Output::default()
            }
            ConfigureTerminal => {
                self.mode = Mode::Config;
                Output::default()
            }
            WriteMemory => {
                let mut lines = vec![".Write startup-config in progress.".to_string()];
                match backend.save_startup(&cfg.render()) {
                    Ok(()) => lines.push(".Write startup-config done.".into()),
                    Err(e) => lines.push(format!("Error - {e}")),
                }
                Output::lines(lines)
            }
            SkipPageDisplay => {
                self.paging = Paging::Off;
                Output::line("Disable page display mode")
            }
            PageDisplay => {
                self.paging = Paging::Auto;
                Output::line("Enable page display mode")
            }
            TerminalLength => {
                let n = p.nums().first().copied().unwrap_or(0);
                self.paging = if n == 0 { Paging::Off } else { Paging::Lines(n as u16) };
                Output::default()
            }
            ShowServerReal => Output::lines(show::server_real(cfg, backend, p.name(0))),
            ShowServerVirtual => Output::lines(show::server_virtual(cfg, backend, p.name(0))),
            ShowServerBind => Output::lines(show::server_bind(cfg, backend)),
            ShowServerSessions => Output::lines(show::server_sessions(backend)),
            ShowServerTraffic => Output::lines(show::server_traffic(backend)),
            ShowAcmLatency => Output::lines(show::acm_latency(backend)),
            ShowRunningConfig => Output::lines(cfg.render().lines().map(String::from).collect()),
            ShowVersion => Output::lines(show::version(backend)),
            ShowStatistics => Output::lines(show::statistics(cfg, backend)),
            ShowTelnet => Output::lines(show::telnet(backend.telnet())),
            ShowHistory => Output::lines(self.history.iter().map(|h| format!("  {h}")).collect()),
            _ => self.configure(p, cfg, backend),
        }
    }

    /// Configuration commands: edit the model, then send the difference to the switch.
    fn configure(&mut self, p: &Parsed, cfg: &mut SlbConfig, backend: &mut dyn Backend) -> Output {
        let before = cfg.clone();
        let mut lines = match self.edit(p, cfg) {
            Ok(lines) => lines,
            Err(e) => {
                *cfg = before;
                return Output::line(e);
            }
        };
        if matches!(p.cmd, Cmd::Predictor | Cmd::NoPredictor | Cmd::ServerPredictor | Cmd::NoServerPredictor) {
            for vs in &cfg.virtuals {
                let (old, new) = match before.virtual_server(&vs.name) {
                    Some(o) => (before.predictor_of(o), cfg.predictor_of(vs)),
                    None => continue,
                };
                if old != new {
                    if let Err(e) = backend.set_predictor(vs.vip, new) {
                        lines.push(format!("Error - {e}"));
                    }
                }
            }
        }
        lines.extend(apply_diff(&before, cfg, backend));
        Output::lines(lines)
    }

    fn current_real<'c>(&mut self, cfg: &'c mut SlbConfig) -> Result<&'c mut RealServerCfg, String> {
        let Mode::RealServer(name) = &self.mode else { return Err("Error - not in a real server".into()) };
        let name = name.clone();
        if cfg.real(&name).is_none() {
            self.mode = Mode::Config;
            return Err(format!("Error - real server {name} no longer exists"));
        }
        Ok(cfg.real_mut(&name).expect("checked"))
    }

    fn current_virtual<'c>(&mut self, cfg: &'c mut SlbConfig) -> Result<&'c mut VirtualServerCfg, String> {
        let Mode::VirtualServer(name) = &self.mode else { return Err("Error - not in a virtual server".into()) };
        let name = name.clone();
        if cfg.virtual_server(&name).is_none() {
            self.mode = Mode::Config;
            return Err(format!("Error - virtual server {name} no longer exists"));
        }
        Ok(cfg.virtual_mut(&name).expect("checked"))
    }

    /// Edits the model. An `Err` leaves it unchanged (the caller restores it).
    fn edit(&mut self, p: &Parsed, cfg: &mut SlbConfig) -> Result<Vec<String>, String> {
        use Cmd::*;
        let name = p.name(0).unwrap_or_default().to_string();
        let port = p.ports().first().copied().unwrap_or(0);
        match p.cmd {
            Hostname => cfg.hostname = name,
            NoHostname => cfg.hostname = DEFAULT_HOSTNAME.into(),
            ForceDelete => cfg.force_delete = true,
            NoForceDelete => cfg.force_delete = false,
            ServerPredictor => cfg.predictor = predictor_kw(p),
            NoServerPredictor => cfg.predictor = crate::config::Predictor::default(),
            ServerReal => {
                let ip = p.ip().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                match cfg.real(&name) {
                    Some(r) if r.ip != ip => {
                        return Err(format!("Error - real server {name} already has IP address {}", r.ip))
                    }
                    Some(_) => {}
                    None => {
                        if let Some(other) = cfg.real_name_by_ip(ip) {
                            return Err(format!("Error - IP address {ip} is already used by real server {other}"));
                        }
                        cfg.reals.push(RealServerCfg::new(&name, ip));
                    }
                }
                self.mode = Mode::RealServer(name);
            }
            NoServerReal => {
                if cfg.real(&name).is_none() {
                    return Err(format!("Error - real server {name} does not exist"));
                }
                cfg.reals.retain(|r| r.name != name);
                for vs in &mut cfg.virtuals {
                    vs.binds.retain(|b| b.real != name);
                }
                return Ok(vec![format!("Server {name} successfully deleted.")]);
            }
            ServerVirtual => {
                let vip = p.ip().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                match cfg.virtual_server(&name) {
                    Some(v) if v.vip != vip => {
                        return Err(format!("Error - virtual server {name} already has IP address {}", v.vip))
                    }
                    Some(_) => {}
                    None => {
                        if let Some(other) = cfg.virtuals.iter().find(|v| v.vip == vip) {
                            return Err(format!(
                                "Error - IP address {vip} is already used by virtual server {}",
                                other.name
                            ));
                        }
                        cfg.virtuals.push(VirtualServerCfg::new(&name, vip));
                    }
                }
                self.mode = Mode::VirtualServer(name);
            }
            NoServerVirtual => {
                if cfg.virtual_server(&name).is_none() {
                    return Err(format!("Error - virtual server {name} does not exist"));
                }
                cfg.virtuals.retain(|v| v.name != name);
                return Ok(vec![format!("Server {name} successfully deleted.")]);
            }
            RsPort | RsPortUrl | RsPortKeepalive | RsPortStatusCode | RsPortL4CheckOnly | RsPortDisable => {
                let r = self.current_real(cfg)?;
                if r.port(port).is_none() {
                    r.ports.push(RealPort::new(port));
                }
                let rp = r.ports.iter_mut().find(|x| x.port == port).expect("just added");
                match p.cmd {
                    RsPortUrl => rp.url = p.string().map(String::from),
                    RsPortKeepalive => rp.keepalive = true,
                    RsPortL4CheckOnly => rp.l4_check_only = true,
                    RsPortDisable => rp.disabled = true,
                    RsPortStatusCode => {
                        let n = p.nums();
                        let (a, b) = (n[0] as u16, n[1] as u16);
                        if a > b {
                            return Err(format!("Error - status-code range {a} {b}: first must not exceed second"));
                        }
                        rp.status_codes = Some((a, b));
                    }
                    _ => {}
                }
            }
            RsNoPort => {
                let r = self.current_real(cfg)?;
                let rname = r.name.clone();
                if r.port(port).is_none() {
                    return Err(no_port(port, "real", &rname));
                }
                r.ports.retain(|x| x.port != port);
                for vs in &mut cfg.virtuals {
                    vs.binds.retain(|b| !(b.real == rname && b.rport == port));
                }
            }
            RsNoPortUrl | RsNoPortKeepalive | RsNoPortStatusCode | RsNoPortL4CheckOnly | RsNoPortDisable => {
                let r = self.current_real(cfg)?;
                let rname = r.name.clone();
                let Some(rp) = r.ports.iter_mut().find(|x| x.port == port) else {
                    return Err(no_port(port, "real", &rname));
                };
                match p.cmd {
                    RsNoPortUrl => rp.url = None,
                    RsNoPortKeepalive => rp.keepalive = false,
                    RsNoPortStatusCode => rp.status_codes = None,
                    RsNoPortL4CheckOnly => rp.l4_check_only = false,
                    _ => rp.disabled = false,
                }
            }
            Weight => self.current_real(cfg)?.weight = p.nums()[0],
            NoWeight => self.current_real(cfg)?.weight = DEFAULT_WEIGHT,
            MaxConn => self.current_real(cfg)?.max_conn = p.nums()[0],
            NoMaxConn => self.current_real(cfg)?.max_conn = DEFAULT_MAX_CONN,
            SourceNat => self.current_real(cfg)?.source_nat = true,
            NoSourceNat => self.current_real(cfg)?.source_nat = false,
            VsPort | VsPortDisable | VsDropFraction => {
                let v = self.current_virtual(cfg)?;
                if v.port(port).is_none() {
                    v.ports.push(VirtualPort { port, disabled: false, drop_fraction: 0.0 });
                }
                let vp = v.ports.iter_mut().find(|x| x.port == port).expect("just added");
                match p.cmd {
                    VsPortDisable => vp.disabled = true,
                    VsDropFraction => vp.drop_fraction = p.fraction().unwrap_or(0.0),
                    _ => {}
                }
            }
            VsNoPort | VsNoPortDisable | VsNoDropFraction => {
                let v = self.current_virtual(cfg)?;
                let Some(vp) = v.ports.iter_mut().find(|x| x.port == port) else {
                    return Err(no_port(port, "virtual", &v.name));
                };
                match p.cmd {
                    VsNoPortDisable => vp.disabled = false,
                    VsNoDropFraction => vp.drop_fraction = 0.0,
                    _ => {
                        v.ports.retain(|x| x.port != port);
                        v.binds.retain(|b| b.vport != port);
                    }
                }
            }
            Predictor => self.current_virtual(cfg)?.predictor = Some(predictor_kw(p)),
            NoPredictor => self.current_virtual(cfg)?.predictor = None,
            Bind | NoBind => {
                // bind VPORT REAL RPORT [REAL RPORT]...
                let ports = p.ports();
                let pairs: Vec<crate::config::Bind> = ports[1..]
                    .iter()
                    .enumerate()
                    .map(|(i, rport)| crate::config::Bind {
                        vport: ports[0],
                        real: p.name(i).unwrap_or_default().to_string(),
                        rport: *rport,
                    })
                    .collect();
                let vname = self.current_virtual(cfg)?.name.clone();
                for b in &pairs {
                    if p.cmd == Bind {
                        check_bind(cfg, &vname, b)?;
                    }
                    let v = cfg.virtual_mut(&vname).expect("current");
                    let present = v.binds.contains(b);
                    match (p.cmd, present) {
                        (Bind, false) => v.binds.push(b.clone()),
                        (NoBind, true) => v.binds.retain(|x| x != b),
                        (NoBind, false) => {
                            return Err(format!(
                                "Error - {} is not bound to {} {}",
                                port_name(b.vport),
                                b.real,
                                port_name(b.rport)
                            ))
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Ok(Vec::new())
    }
}

/// Global configuration commands: typed in a sub-mode they move the session to config level.
fn switches_mode(cmd: Cmd) -> bool {
    use Cmd::*;
    matches!(
        cmd,
        Hostname
            | NoHostname
            | ServerReal
            | NoServerReal
            | ServerVirtual
            | NoServerVirtual
            | ForceDelete
            | NoForceDelete
            | ServerPredictor
            | NoServerPredictor
    )
}

fn no_port(port: u16, kind: &str, name: &str) -> String {
    format!("Error - port {} is not configured on {kind} server {name}", port_name(port))
}

fn check_bind(cfg: &SlbConfig, vname: &str, b: &Bind) -> Result<(), String> {
    let Some(r) = cfg.real(&b.real) else {
        return Err(format!("Error - real server {} does not exist", b.real));
    };
    if r.port(b.rport).is_none() {
        return Err(no_port(b.rport, "real", &b.real));
    }
    let v = cfg.virtual_server(vname).expect("current");
    if v.port(b.vport).is_none() {
        return Err(no_port(b.vport, "virtual", vname));
    }
    Ok(())
}

fn predictor_kw(p: &Parsed) -> Predictor {
    p.values
        .iter()
        .rev()
        .find_map(|v| match v {
            crate::grammar::Value::Kw(k) => Predictor::from_name(k),
            _ => None,
        })
        .unwrap_or_default()
}

/// Images (zero-loss restart of the control plane): see [`crate::image`].
impl Session {
    pub(crate) fn image(&self) -> crate::image::SessionImage {
        use crate::image::{ModeImage, PagingImage};
        crate::image::SessionImage {
            mode: match &self.mode {
                Mode::User => ModeImage::User,
                Mode::Privileged => ModeImage::Privileged,
                Mode::Config => ModeImage::Config,
                Mode::RealServer(n) => ModeImage::RealServer(n.clone()),
                Mode::VirtualServer(n) => ModeImage::VirtualServer(n.clone()),
            },
            privileged: self.opts.privileged,
            awaiting_enable: self.awaiting_enable,
            paging: match self.paging {
                Paging::Auto => PagingImage::Auto,
                Paging::Off => PagingImage::Off,
                Paging::Lines(n) => PagingImage::Lines(n),
            },
            history: self.history.clone(),
        }
    }

    pub(crate) fn from_image(
        img: &crate::image::SessionImage,
        enable_secret: Option<String>,
    ) -> Result<Session, crate::image::ImageError> {
        use crate::image::{ImageError, ModeImage, PagingImage};
        let name = |n: &String| {
            if n.is_empty() || n.len() > crate::editor::MAX_LINE || n.chars().any(|c| c.is_control()) {
                Err(ImageError::invalid("session mode", format!("server name {n:?}")))
            } else {
                Ok(n.clone())
            }
        };
        if img.history.len() > HISTORY || img.history.iter().any(|l| l.len() > crate::editor::MAX_LINE) {
            return Err(ImageError::invalid("session history", format!("{} lines", img.history.len())));
        }
        Ok(Session {
            mode: match &img.mode {
                ModeImage::User => Mode::User,
                ModeImage::Privileged => Mode::Privileged,
                ModeImage::Config => Mode::Config,
                ModeImage::RealServer(n) => Mode::RealServer(name(n)?),
                ModeImage::VirtualServer(n) => Mode::VirtualServer(name(n)?),
            },
            opts: SessionOptions { enable_secret, privileged: img.privileged },
            awaiting_enable: img.awaiting_enable,
            paging: match img.paging {
                PagingImage::Auto => Paging::Auto,
                PagingImage::Off => Paging::Off,
                PagingImage::Lines(n) => Paging::Lines(n),
            },
            history: img.history.clone(),
        })
    }
}
