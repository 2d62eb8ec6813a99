//! A blocking client: one connection, one request at a time.

use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::frame::{read_frame, write_frame, FrameError};
use crate::{CallError, Protocol, Request};

/// One connection to a server of `P`.
pub struct Client<P> {
    stream: UnixStream,
    next_id: u64,
    api: PhantomData<fn() -> P>,
}

impl<P: Protocol> Client<P> {
    /// Connects, with [`Protocol::CALL_TIMEOUT`] on each read and write.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client<P>, CallError<P::Error>> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).map_err(|source| CallError::Connect {
            peer: P::PEER,
            path: path.display().to_string(),
            source,
        })?;
        let timeouts = stream
            .set_read_timeout(Some(P::CALL_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(P::CALL_TIMEOUT)));
        timeouts.map_err(|e| CallError::Transport { peer: P::PEER, source: FrameError::Io(e) })?;
        Ok(Client { stream, next_id: 1, api: PhantomData })
    }

    /// Connects, retrying every 50 ms until `wait` has passed (a server still starting).
    pub fn connect_wait(path: impl AsRef<Path>, wait: Duration) -> Result<Client<P>, CallError<P::Error>> {
        let end = Instant::now() + wait;
        loop {
            match Client::connect(path.as_ref()) {
                Ok(c) => return Ok(c),
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Sends one request, in the version that introduced its body, and returns the response.
    pub fn call(&mut self, body: P::Body) -> Result<P::Response, CallError<P::Error>> {
        let id = self.next_id;
        self.next_id += 1;
        let transport = |source| CallError::Transport { peer: P::PEER, source };
        let request = Request { id, version: P::body_version(&body), body };
        write_frame(&mut self.stream, &request, P::MAX_FRAME).map_err(transport)?;
        let response: P::Response = read_frame(&mut self.stream, P::MAX_FRAME).map_err(transport)?;
        match P::response_id(&response) {
            got if got == id => Ok(response),
            got => Err(CallError::Unexpected(format!("response id {got} for request {id}"))),
        }
    }
}
