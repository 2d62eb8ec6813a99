//! Runtime: what runs the sans-IO core in threads and sockets.

pub mod api_server;
