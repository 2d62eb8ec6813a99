//! ServerIron CLI.
#![deny(unsafe_code)]

pub mod auth;
pub mod backend;
pub mod config;
pub mod editor;
pub mod fuzzing;
pub mod grammar;
pub mod server;
pub mod session;
pub mod show;
pub mod telnet;

pub use auth::Credentials;
pub use backend::{Backend, BackendError, FakeBackend, LatencyRow, SessionRow, TrafficCounters};
pub use config::SlbConfig;
pub use server::{Connection, ServerSettings};
pub use session::{replay, Mode, Output, Paging, Session, SessionOptions};
