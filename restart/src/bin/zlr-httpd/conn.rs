//! The per-connection stage machine of zlr-httpd: reading a request head,
//! processing it into a response (recorded before the first byte is sent),
//! sending it (with confirmed progress), and finishing the request (batched
//! deletion of processed input, keep-alive or close).

use super::*;

impl Server {
    /// Run a connection's stage machine until it would block.
    pub(super) fn drive(&mut self, slot: u32) {
        loop {
            let Some(c) = self.conns[slot as usize].as_mut() else { return };
            match c.rec.stage {
                Stage::Free => return,
                Stage::Reading => {
                    match http::parse(&c.rbuf, MAX_REQUEST) {
                        Ok(Some(req)) => {
                            self.start_request(slot, req);
                            continue;
                        }
                        Ok(None) => {}
                        Err(()) => {
                            warn!("request head too large; closing");
                            return self.close(slot);
                        }
                    }
                    let mut tmp = [0u8; 4096];
                    let r = match c.reader.as_mut() {
                        Some(rd) => rd.read(c.sock.as_fd(), &mut tmp).map_err(|e| match e {
                            HreadError::Io(e) => e,
                            other => std::io::Error::other(other.to_string()),
                        }),
                        None => c.sock.read(&mut tmp),
                    };
                    match r {
                        Ok(0) => return self.close(slot),
                        Ok(n) => c.rbuf.extend_from_slice(&tmp[..n]),
                        Err(e) if is_would_block(&e) => return,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return self.close(slot),
                    }
                }
                Stage::Processing => {
                    let root = self.root.clone();
                    let c = self.conns[slot as usize].as_mut().expect("conn");
                    match build_response(&root, &mut c.rec, false) {
                        Ok(resp) => {
                            c.rec.stage = Stage::Sending;
                            c.rec.resp_start = c.tx;
                            c.rec.total_len = resp.total();
                            c.rec.bytes_sent = 0;
                            c.resp = Some(resp);
                            self.save_conn(slot);
                        }
                        Err(e) => {
                            warn!("response: {e}");
                            return self.close(slot);
                        }
                    }
                }
                Stage::Sending => match self.send_some(slot) {
                    Ok(true) => self.finish_request(slot),
                    Ok(false) => return,
                    Err(_) => return self.close(slot),
                },
            }
        }
    }

    fn start_request(&mut self, slot: u32, req: http::Request) {
        let c = self.conns[slot as usize].as_mut().expect("conn");
        c.rec.req_len = req.len as u32;
        c.rec.head_only = req.head_only;
        c.rec.keep_alive = req.keep_alive;
        c.rec.path = req.path.iter().copied().take(state::PATH_CAP).collect();
        c.rec.range = req.range;
        c.rec.suffix_range = req.suffix;
        c.rec.date_secs = now_secs();
        c.rec.status = req.error.unwrap_or(0);
        c.rec.stage = Stage::Processing;
        c.rbuf.drain(..req.len);
        self.save_conn(slot);
        if let Some(code) = req.error {
            // Error answers are built from the recorded status only.
            let c = self.conns[slot as usize].as_mut().expect("conn");
            let head = http::head(code, &c.rec.path, 0, 0, 0, 0, c.rec.keep_alive, c.rec.date_secs);
            c.rec.stage = Stage::Sending;
            c.rec.resp_start = c.tx;
            c.rec.total_len = head.len() as u64;
            c.resp = Some(Resp { head, file: None, body_start: 0, body_len: 0, sent: 0 });
            self.save_conn(slot);
        }
    }

    /// Send until done (`Ok(true)`) or the socket is full (`Ok(false)`).
    fn send_some(&mut self, slot: u32) -> std::io::Result<bool> {
        let fw = self.fw.is_some();
        let c = self.conns[slot as usize].as_mut().expect("conn");
        let Some(resp) = c.resp.as_mut() else { return Ok(true) };
        let mut progressed = false;
        let res = loop {
            let total = resp.total();
            if resp.sent >= total {
                break Ok(true);
            }
            let hl = resp.head.len() as u64;
            let r = if resp.sent < hl {
                c.sock.write(&resp.head[resp.sent as usize..])
            } else {
                let f = resp.file.as_ref().ok_or_else(|| std::io::Error::other("no file"))?;
                let mut off = (resp.body_start + resp.sent - hl) as i64;
                let n = (total - resp.sent).min(1 << 20) as usize;
                sys::sendfile(c.sock.as_fd(), f.as_fd(), &mut off, n)
            };
            match r {
                Ok(0) => break Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                Ok(n) => {
                    resp.sent += n as u64;
                    c.tx += n as u64;
                    progressed = true;
                }
                Err(e) if is_would_block(&e) => break Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if fw && progressed && matches!(res, Ok(false)) {
            // Confirm progress of a partial send (the kernel's counters make
            // recovery exact even if we crash before this line).
            c.rec.bytes_sent = resp.sent;
            self.save_conn(slot);
        }
        res
    }

    fn finish_request(&mut self, slot: u32) {
        let c = self.conns[slot as usize].as_mut().expect("conn");
        c.resp = None;
        if !c.rec.keep_alive {
            return self.close(slot);
        }
        // No record write here: a Sending record whose response the kernel
        // says is fully written already means "done, read the next request"
        // to the recovery path, so the next request's record carries it.
        c.rec.req_start += u64::from(c.rec.req_len);
        c.rec.req_len = 0;
        c.rec.bytes_sent = c.rec.total_len;
        c.rec.stage = Stage::Reading;
        let processed = c.rec.req_start - c.rx_deleted;
        if processed >= DELETE_BATCH {
            if let Some(rd) = c.reader.as_mut() {
                match rd.delete(c.sock.as_fd(), processed) {
                    Ok(_) => c.rx_deleted += processed,
                    Err(e) => {
                        warn!("hread delete: {e}");
                        self.close(slot);
                    }
                }
            }
        }
    }
}
