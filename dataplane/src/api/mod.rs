//! The switch API the control plane speaks, as the dataplane sees it: the messages are the
//! `switch-api` crate's (so the control plane links them without the dataplane), the server
//! is [`crate::runtime::api_server`].

pub use switch_api::*;
