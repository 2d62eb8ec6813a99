//! The ServerIron command language, sans-IO.
//!
//! An administrator who has run a Foundry/Brocade ServerIron telnets in and configures server
//! load balancing in the device's words. This crate is that language and the telnet server side
//! of it, with no sockets and no clock inside: the control plane moves bytes and passes time in.
//!
//! Layers, bottom up (each usable alone):
//!
//! | module | what |
//! |---|---|
//! | [`telnet`] | RFC 854 codec: RFC 1143 option negotiation (WILL ECHO, WILL SGA, DO NAWS; LINEMODE and everything else refused), CR LF / CR NUL / LF → one Enter, 0xFF doubling |
//! | [`editor`] | line editor: echo, Backspace/DEL, Ctrl-U/W/A/E/K/D, arrows, history, password mode, `?` and Tab reported to the driver |
//! | [`grammar`] | one declarative table of every command: parsing, unique-prefix abbreviation, `?` help, Tab completion and the error texts all come from it |
//! | [`config`] | the SLB configuration model ([`SlbConfig`]), rendered as `show running-config` |
//! | [`session`] | one administrator's session: modes and prompts, enable, paging setting, history; executes lines against an [`SlbConfig`] and a [`Backend`] |
//! | [`mode`] | the session's modes ([`Mode`], [`mode::ModeKind`]: which grammar applies) |
//! | [`apply`] | configuration edits → ACM primitives ([`apply::apply_diff`]) |
//! | [`replay`](mod@replay) | [`replay()`] of a startup-config through a session |
//! | [`show`] | the `show` renderers |
//! | [`backend`] | the [`Backend`] trait the control plane implements, its row types, and [`FakeBackend`] |
//! | [`auth`] | Argon2id password hashes (PHC strings) and [`Credentials`] |
//! | [`server`] | [`Connection`]: telnet + login + editor + session + `--More--` pager, with deadlines for timers |
//! | [`stats`] | [`TelnetCounters`]: sessions, logins and bad input of every connection of a server (`show telnet`) |
//! | [`image`] | [`ConnectionImage`]: a connection's whole state as plain data, for the control plane's zero-loss restart |
//! | [`fuzzing`] | entry points shared by the cargo-fuzz targets (`cli/fuzz/`) and the property tests |
//!
//! # Embedding (what the control plane does)
//!
//! ```no_run
//! use std::time::Instant;
//! use cli::{Connection, Credentials, FakeBackend, ServerSettings, SlbConfig};
//!
//! // At start: users from appliance.toml (PHC hashes from `acm-hash-password`), then the
//! // startup-config replayed through the same primitives as typed commands.
//! let hash = cli::auth::hash_password("acm-lab").unwrap();
//! let creds = Credentials::new([("admin".to_string(), hash.clone())], Some(hash)).unwrap();
//! let settings = ServerSettings::new(creds);
//! let mut cfg = SlbConfig::default();              // shared by all sessions (behind a Mutex)
//! let mut backend = FakeBackend::default();        // the control plane's `impl Backend`
//! let errors = cli::replay("server real rs1 10.0.1.11\n port http\n", &mut cfg, &mut backend);
//! assert!(errors.is_empty());
//!
//! // Per accepted TCP connection:
//! let mut conn = Connection::new(settings.clone(), Instant::now());
//! let to_client = conn.start(Instant::now());          // write these bytes
//! let from_client = b"admin\r\n";                       // whatever the socket read
//! let to_client = conn.on_input(from_client, Instant::now(), &mut cfg, &mut backend);
//! // ... write `to_client`; sleep until `conn.next_deadline()` and then call `conn.on_timer`;
//! // close the socket once `conn.is_closed()`. A client that disconnects: drop `conn`.
//! ```
//!
//! [`Backend`] methods are called synchronously while a line executes. A tokio control plane
//! either answers from its binding cache and queues primitives for the switch driver (returning
//! once queued), or runs `on_input` under `spawn_blocking` / `block_in_place` so `apply` can wait
//! for the switch's acknowledgement.
//!
//! # How configuration reaches the switch
//!
//! Commands edit [`SlbConfig`]; then [`apply::apply_diff`] compares the bindings the
//! configuration asks for before and after ([`SlbConfig::live_bindings`]: a `bind` whose real
//! server, real port and virtual port exist and are not disabled) and sends the difference as ACM
//! primitives: `Remove` (drain, GDN) — or `ForceRemove` under `server force-delete` — for
//! bindings that went away, `Add` for new bindings and changed weight/source-nat, `Drop` for
//! changed drop fractions of services with bindings. So `no bind`, `no server real`,
//! `port N disable`, `weight N` and startup replay all take the same path as the API.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod apply;
pub mod auth;
pub mod backend;
pub mod config;
pub mod editor;
pub mod fuzzing;
pub mod grammar;
pub mod image;
pub mod mode;
pub mod replay;
pub mod server;
pub mod session;
pub mod show;
pub mod stats;
pub mod telnet;

pub use auth::Credentials;
pub use backend::{Backend, BackendError, FakeBackend, LatencyRow, SessionRow, SessionTable, TrafficCounters};
pub use config::SlbConfig;
pub use image::{ConnectionImage, ImageError};
pub use mode::Mode;
pub use replay::{replay, ReplayError};
pub use server::{Connection, ServerSettings};
pub use session::{Output, Paging, Session, SessionOptions};
pub use stats::{TelnetCounters, TelnetEvent, TelnetStats};
