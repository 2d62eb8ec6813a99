//! ServerIron CLI.
#![deny(unsafe_code)]

pub mod auth;
pub mod backend;
pub mod config;
pub mod grammar;
pub mod session;
pub mod show;
pub mod telnet;

pub use backend::{Backend, BackendError, FakeBackend, LatencyRow, SessionRow, TrafficCounters};
pub use config::SlbConfig;
pub use session::{replay, Mode, Output, Paging, Session, SessionOptions};
