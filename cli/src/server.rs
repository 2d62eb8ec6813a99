//! The sans-IO connection driver: telnet codec + login + line editor + [`Session`] + pager.
//!
//! The control plane's network code only moves bytes and time:
//!
//! ```text
//! let mut conn = Connection::new(settings.clone());
//! socket.write_all(&conn.start(now, &cfg)).await?;
//! loop {
//!     select! {
//!         n = socket.read(&mut buf) => {
//!             if n == 0 { break }                           // client went away: just drop conn
//!             let out = conn.on_input(&buf[..n], now, &mut cfg, &mut backend);
//!             socket.write_all(&out).await?;
//!         }
//!         _ = sleep_until(conn.next_deadline()) => {
//!             socket.write_all(&conn.on_timer(now)).await?;
//!         }
//!     }
//!     if conn.is_closed() { break }
//! }
//! ```
//!
//! Timers are deadlines the driver returns ([`Connection::next_deadline`]): the login timeout,
//! the idle timeout, and after a failed login the delay during which input is discarded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Credentials;
use crate::backend::Backend;
use crate::config::SlbConfig;
use crate::editor::{EditEvent, Editor, BELL, MAX_LINE};
use crate::mode::Mode;
use crate::session::{Paging, Session, SessionOptions};
use crate::stats::{TelnetCounters, TelnetEvent, TelnetStats};
use crate::telnet::{encode_bytes, encode_text, Event, OptState, TelnetCodec, OPT_ECHO};

/// The device's pager prompt.
pub const MORE: &str = "--More--, next page: Space, next line: Return key, quit: Control-c";

/// Per-listener settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Who may log in, and the enable password.
    pub credentials: Credentials,
    /// Close a logged-in session idle this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Close a connection that has not logged in within this time.
    pub login_timeout: Duration,
    /// Input is discarded this long after a failed login.
    pub login_fail_delay: Duration,
    /// Failed logins before the connection is closed.
    pub max_login_attempts: u32,
    /// Where every connection made with these settings (and their clones) counts sessions,
    /// logins and bad input (`show telnet`).
    pub counters: Arc<TelnetCounters>,
}

impl ServerSettings {
    /// Defaults: 15 min idle, 60 s to log in, 2 s delay after a failure, 3 attempts.
    pub fn new(credentials: Credentials) -> ServerSettings {
        ServerSettings {
            credentials,
            idle_timeout: Some(Duration::from_secs(15 * 60)),
            login_timeout: Duration::from_secs(60),
            login_fail_delay: Duration::from_secs(2),
            max_login_attempts: 3,
            counters: Arc::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    User,
    Password {
        user: String,
    },
    /// After a failed login: discard input until the deadline.
    Delay {
        until: Instant,
    },
    Shell,
    Closed,
}

/// One telnet connection.
#[derive(Debug)]
pub struct Connection {
    settings: ServerSettings,
    codec: TelnetCodec,
    editor: Editor,
    session: Session,
    state: State,
    attempts: u32,
    height: u16,
    /// Lines still to page out.
    pager: VecDeque<String>,
    started: Instant,
    last_input: Instant,
    /// The current line already rang past the length limit (counted once per line).
    long_line: bool,
    /// Counted as open (its close is counted once).
    counted_open: bool,
}

impl Connection {
    /// A new connection (call [`Connection::start`] next).
    pub fn new(settings: ServerSettings, now: Instant) -> Connection {
        let session = Session::new(SessionOptions {
            enable_secret: settings.credentials.enable_secret.clone(),
            privileged: false,
        });
        Connection {
            settings,
            codec: TelnetCodec::new(),
            editor: Editor::new(),
            session,
            state: State::User,
            attempts: 0,
            height: 0,
            pager: VecDeque::new(),
            started: now,
            last_input: now,
            long_line: false,
            counted_open: false,
        }
    }

    fn count(&self, event: TelnetEvent) {
        self.settings.counters.count(event);
    }

    /// Ends the connection (the caller closes the socket after writing the output).
    fn close(&mut self) {
        self.state = State::Closed;
        if std::mem::take(&mut self.counted_open) {
            self.count(TelnetEvent::Closed);
        }
    }

    /// The opening bytes: option negotiation, banner and login prompt.
    pub fn start(&mut self, now: Instant) -> Vec<u8> {
        if !self.counted_open {
            self.counted_open = true;
            self.count(TelnetEvent::Opened);
        }
        self.started = now;
        self.last_input = now;
        let mut out = Vec::new();
        self.codec.start(&mut out);
        encode_text("\nUser Access Verification\n\nPlease Enter Login Name: ", &mut out);
        out
    }

    /// Whether the connection is over (the caller closes the socket after writing the output).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether a user is logged in.
    pub fn logged_in(&self) -> bool {
        matches!(self.state, State::Shell)
    }

    /// The session (mode, paging, history).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// When [`Connection::on_timer`] must be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Closed => None,
            State::Delay { until } => Some((*until).min(self.started + self.settings.login_timeout)),
            State::User | State::Password { .. } => Some(self.started + self.settings.login_timeout),
            State::Shell => self.settings.idle_timeout.map(|d| self.last_input + d),
        }
    }

    /// Handles expired deadlines.
    pub fn on_timer(&mut self, now: Instant) -> Vec<u8> {
        let mut out = Vec::new();
        self.timers(now, &mut out);
        out
    }

    fn timers(&mut self, now: Instant, out: &mut Vec<u8>) {
        match self.state {
            State::Closed => {}
            State::Shell if self.settings.idle_timeout.is_some_and(|d| now >= self.last_input + d) => {
                encode_text("\nSession idle timeout.\n", out);
                self.count(TelnetEvent::IdleTimeout);
                self.close();
            }
            State::Shell => {}
            _ if now >= self.started + self.settings.login_timeout => {
                encode_text("\nLogin timed out.\n", out);
                self.count(TelnetEvent::LoginTimeout);
                self.close();
            }
            State::Delay { until } if now >= until => {
                self.state = State::User;
                self.editor.clear();
                encode_text("Please Enter Login Name: ", out);
            }
            _ => {}
        }
    }

    /// Handles bytes from the client; returns bytes to send.
    pub fn on_input(&mut self, input: &[u8], now: Instant, cfg: &mut SlbConfig, backend: &mut dyn Backend) -> Vec<u8> {
        let mut out = Vec::new();
        self.timers(now, &mut out);
        if self.state == State::Closed {
            return out;
        }
        self.last_input = now;
        let mut events = Vec::new();
        self.codec.decode(input, &mut events, &mut out);
        self.settings.counters.add(TelnetEvent::BadTelnet, self.codec.take_errors());
        for ev in events {
            if self.state == State::Closed {
                break;
            }
            self.event(ev, now, cfg, backend, &mut out);
        }
        out
    }

    fn event(&mut self, ev: Event, now: Instant, cfg: &mut SlbConfig, backend: &mut dyn Backend, out: &mut Vec<u8>) {
        if let Event::Naws { height, .. } = ev {
            self.height = height;
            return;
        }
        if let State::Delay { .. } = self.state {
            return; // not accepting input yet
        }
        let byte = match ev {
            Event::Data(b) => b,
            Event::Naws { .. } => return,
            Event::Interrupt => 0x03,
            Event::EraseChar => 0x08,
            Event::EraseLine => 0x15,
            Event::AbortOutput => {
                self.pager.clear();
                return;
            }
            Event::AreYouThere => {
                encode_text("\n[Yes]\n", out);
                self.redraw(cfg, out);
                return;
            }
        };
        if !self.pager.is_empty() {
            self.page_key(byte, cfg, out);
            return;
        }
        let mut echo = Vec::new();
        let ev = self.editor.feed(byte, self.session.history(), &mut echo);
        if ev.is_some() {
            self.long_line = false;
        } else if !self.long_line && echo.contains(&BELL) && self.editor.line().len() >= MAX_LINE {
            self.long_line = true;
            self.count(TelnetEvent::LongLine);
        }
        // A client that refused our echo echoes locally (line by line): send it no echo.
        if self.codec.local(OPT_ECHO) != OptState::No {
            encode_bytes(&echo, out);
        }
        let Some(ev) = ev else { return };
        match (&self.state, ev) {
            (State::User, EditEvent::Line(user)) => {
                self.state = State::Password { user: user.trim().to_string() };
                self.editor.set_password(true);
                encode_text("Please Enter Password: ", out);
            }
            (State::Password { user }, EditEvent::Line(pw)) => {
                self.editor.set_password(false);
                if self.settings.credentials.verify(user, &pw) {
                    self.count(TelnetEvent::Login);
                    self.state = State::Shell;
                    encode_text("User login successful.\n\n", out);
                    self.redraw(cfg, out);
                } else {
                    self.attempts += 1;
                    self.count(TelnetEvent::FailedLogin);
                    encode_text("Error - Incorrect username or password.\n", out);
                    if self.attempts >= self.settings.max_login_attempts {
                        encode_text("Too many failed login attempts.\n", out);
                        self.close();
                    } else {
                        self.state = State::Delay { until: now + self.settings.login_fail_delay };
                    }
                }
            }
            (State::User | State::Password { .. }, EditEvent::Interrupt) => {
                self.editor.set_password(false);
                self.state = State::User;
                encode_text("Please Enter Login Name: ", out);
            }
            (State::User | State::Password { .. }, EditEvent::Redraw) => {
                encode_text("\n", out);
                let p = if matches!(self.state, State::User) {
                    "Please Enter Login Name: "
                } else {
                    "Please Enter Password: "
                };
                encode_text(p, out);
            }
            (State::User | State::Password { .. }, _) => encode_bytes(&[BELL], out),
            (State::Shell, ev) => self.shell(ev, cfg, backend, out),
            (State::Delay { .. } | State::Closed, _) => {}
        }
    }

    fn shell(&mut self, ev: EditEvent, cfg: &mut SlbConfig, backend: &mut dyn Backend, out: &mut Vec<u8>) {
        match ev {
            EditEvent::Line(line) => self.run(&line, cfg, backend, out),
            EditEvent::CtrlZ => {
                if matches!(self.session.mode(), Mode::User | Mode::Privileged) || self.session.password_mode() {
                    self.redraw(cfg, out);
                } else {
                    self.run("end", cfg, backend, out);
                }
            }
            EditEvent::Interrupt => self.redraw(cfg, out),
            EditEvent::Redraw => {
                encode_text("\n", out);
                self.redraw(cfg, out);
            }
            EditEvent::Help(text) => {
                for l in self.session.help(&text) {
                    encode_text(&l, out);
                    encode_text("\n", out);
                }
                self.redraw(cfg, out);
            }
            EditEvent::Complete(text) => match self.session.complete(&text) {
                Some(s) => {
                    let mut echo = Vec::new();
                    self.editor.insert_str(&s, &mut echo);
                    encode_bytes(&echo, out);
                }
                None => encode_bytes(&[BELL], out),
            },
        }
    }

    fn run(&mut self, line: &str, cfg: &mut SlbConfig, backend: &mut dyn Backend, out: &mut Vec<u8>) {
        let mut backend = WithTelnet { inner: backend, counters: &self.settings.counters };
        let o = self.session.execute(line, cfg, &mut backend);
        self.editor.set_password(self.session.password_mode());
        if o.quit {
            for l in &o.lines {
                encode_text(l, out);
                encode_text("\n", out);
            }
            self.close();
            return;
        }
        self.pager = o.lines.into();
        self.page(self.page_len(), cfg, out);
    }

    /// Lines per page, or `None` when paging is off.
    fn page_len(&self) -> Option<usize> {
        match self.session.paging() {
            Paging::Off => None,
            Paging::Lines(n) => Some(usize::from(n).max(2) - 1),
            Paging::Auto => Some(if self.height >= 2 { usize::from(self.height) - 1 } else { 23 }),
        }
    }

    /// Prints up to `n` pending lines (all when `None`), then `--More--` or the prompt.
    fn page(&mut self, n: Option<usize>, cfg: &SlbConfig, out: &mut Vec<u8>) {
        let n = n.unwrap_or(usize::MAX);
        for _ in 0..n {
            let Some(l) = self.pager.pop_front() else { break };
            encode_text(&l, out);
            encode_text("\n", out);
        }
        if self.pager.is_empty() {
            self.redraw(cfg, out);
        } else {
            encode_text(MORE, out);
        }
    }

    fn page_key(&mut self, b: u8, cfg: &SlbConfig, out: &mut Vec<u8>) {
        let n = match b {
            b' ' => self.page_len(),
            b'\r' => Some(1),
            0x03 | b'q' | b'Q' => {
                self.pager.clear();
                Some(0)
            }
            _ => return,
        };
        // Erase the --More-- prompt.
        encode_text("\r", out);
        encode_text(&" ".repeat(MORE.len()), out);
        encode_text("\r", out);
        self.page(n, cfg, out);
    }

    fn redraw(&self, cfg: &SlbConfig, out: &mut Vec<u8>) {
        let mut echo = Vec::new();
        self.editor.redraw(&self.session.prompt(cfg), &mut echo);
        encode_bytes(&echo, out);
    }
}

/// Largest pager backlog an image carries (lines); more is cut with a note.
pub const IMAGE_MAX_PAGER: usize = 2000;

/// Images (zero-loss restart of the control plane): see [`crate::image`].
impl Connection {
    /// The connection's whole state at `now`, as plain data.
    pub fn image(&self, now: Instant) -> crate::image::ConnectionImage {
        use crate::image::StateImage;
        let ms = |d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64;
        crate::image::ConnectionImage {
            state: match &self.state {
                State::User => StateImage::User,
                State::Password { user } => StateImage::Password { user: user.clone() },
                State::Delay { until } => StateImage::Delay { remaining_ms: ms(until.saturating_duration_since(now)) },
                State::Shell => StateImage::Shell,
                State::Closed => StateImage::Closed,
            },
            attempts: self.attempts,
            height: self.height,
            pager: self.pager.iter().take(IMAGE_MAX_PAGER).cloned().collect(),
            started_ago_ms: ms(now.saturating_duration_since(self.started)),
            idle_ms: ms(now.saturating_duration_since(self.last_input)),
            codec: self.codec.image(),
            editor: self.editor.image(),
            session: self.session.image(),
        }
    }

    /// Rebuilds a connection from [`Connection::image`] (taken in this process or another) at
    /// `now`. Every field is checked; nothing is sent (the client already has the screen).
    pub fn from_image(
        settings: ServerSettings,
        img: &crate::image::ConnectionImage,
        now: Instant,
    ) -> Result<Connection, crate::image::ImageError> {
        use crate::image::{ImageError, StateImage};
        let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now);
        let state = match &img.state {
            StateImage::User => State::User,
            StateImage::Password { user } if user.len() <= crate::editor::MAX_LINE => {
                State::Password { user: user.clone() }
            }
            StateImage::Password { .. } => return Err(ImageError::invalid("login state", "user name too long")),
            StateImage::Delay { remaining_ms } => State::Delay { until: now + Duration::from_millis(*remaining_ms) },
            StateImage::Shell => State::Shell,
            StateImage::Closed => State::Closed,
        };
        if img.pager.len() > IMAGE_MAX_PAGER {
            return Err(ImageError::invalid("pager", format!("{} lines", img.pager.len())));
        }
        let session = Session::from_image(&img.session, settings.credentials.enable_secret.clone())?;
        let editor = Editor::from_image(&img.editor)?;
        if img.editor.hist.is_some_and(|h| h > session.history().len()) {
            return Err(ImageError::invalid("editor history position", "beyond the history"));
        }
        Ok(Connection {
            codec: TelnetCodec::from_image(&img.codec)?,
            editor,
            session,
            state,
            attempts: img.attempts,
            height: img.height,
            pager: img.pager.iter().cloned().collect(),
            started: ago(img.started_ago_ms),
            last_input: ago(img.idle_ms),
            long_line: false,
            counted_open: false,
            settings,
        })
    }
}

impl Drop for Connection {
    /// A connection dropped without reaching its end (the client went away) counts as closed.
    fn drop(&mut self) {
        if self.counted_open {
            self.count(TelnetEvent::Closed);
        }
    }
}

/// The embedder's backend, plus the telnet counters for `show telnet`.
struct WithTelnet<'a> {
    inner: &'a mut dyn Backend,
    counters: &'a TelnetCounters,
}

impl Backend for WithTelnet<'_> {
    fn apply(&mut self, p: acm::Primitive) -> Result<(), crate::BackendError> {
        self.inner.apply(p)
    }
    fn list(&mut self) -> Vec<acm::BindingInfo> {
        self.inner.list()
    }
    fn traffic(&mut self) -> crate::TrafficCounters {
        self.inner.traffic()
    }
    fn sessions(&mut self) -> crate::SessionTable {
        self.inner.sessions()
    }
    fn latency(&mut self) -> Vec<crate::LatencyRow> {
        self.inner.latency()
    }
    fn save_startup(&mut self, text: &str) -> Result<(), crate::BackendError> {
        self.inner.save_startup(text)
    }
    fn version(&self) -> String {
        self.inner.version()
    }
    fn set_predictor(
        &mut self,
        vip: std::net::Ipv4Addr,
        p: crate::config::Predictor,
    ) -> Result<(), crate::BackendError> {
        self.inner.set_predictor(vip, p)
    }
    fn telnet(&mut self) -> Option<TelnetStats> {
        Some(self.counters.snapshot())
    }
}
