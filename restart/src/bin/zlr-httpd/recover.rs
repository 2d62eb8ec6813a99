//! Restart adoption for zlr-httpd: a new generation takes over the
//! connections restartd kept, matches them to their state records, and
//! resumes each at its recorded stage (re-reading, re-processing, or
//! continuing a response at the exact byte the kernel says was sent).

use super::*;

impl Server {
    /// Recovery path: take over the previous generation's connections.
    pub(super) fn recover(&mut self, mut inherited: std::collections::BTreeMap<String, OwnedFd>) -> Result<()> {
        let fw = self.fw.as_ref().context("framework")?;
        let region = fw.region.clone();
        let count = region.count(T_CONN)?;
        let mut by_id = std::collections::HashMap::new();
        for slot in 0..count {
            match region.read::<ConnRec>(T_CONN, slot) {
                Ok(Some(rec)) if rec.stage != Stage::Free => {
                    by_id.insert(rec.conn_id, (slot, rec));
                }
                Ok(_) => {}
                Err(e) => {
                    error!("connection record {slot} unreadable ({e}); clearing it");
                    self.save(slot, &ConnRec::default());
                }
            }
        }
        let mut resumed = 0;
        let names: Vec<String> = inherited.keys().cloned().collect();
        for name in names {
            let fd = inherited.remove(&name).expect("key");
            let Some(id) = name.strip_prefix("conn:").and_then(|s| s.parse::<u64>().ok()) else {
                warn!("unknown kept channel {name:?}; releasing it");
                self.release_name(&name);
                continue;
            };
            let Some((slot, rec)) = by_id.remove(&id) else {
                warn!("kept connection {id} has no state record; closing it");
                discard_input(&fd);
                self.release_name(&name);
                continue;
            };
            self.free.retain(|&s| s != slot);
            let keep = fd.try_clone();
            match self.resume_conn(slot, rec, fd) {
                Ok(()) => resumed += 1,
                Err(e) => {
                    warn!("connection {id}: cannot resume ({e:#}); closing it");
                    if let Ok(k) = keep {
                        discard_input(&k);
                    }
                    self.release_name(&name);
                    self.save(slot, &ConnRec::default());
                    self.free.push(slot);
                }
            }
        }
        for (id, (slot, _)) in by_id {
            info!("connection {id} was closed by the previous generation; clearing its record");
            self.save(slot, &ConnRec::default());
        }
        info!("recovered {resumed} connections");
        Ok(())
    }

    fn release_name(&self, name: &str) {
        if let Some(s) = self.fw.as_ref().and_then(|f| f.service.as_ref()) {
            let _ = s.release(name);
        }
    }

    fn resume_conn(&mut self, slot: u32, mut rec: ConnRec, fd: OwnedFd) -> Result<()> {
        let sock = TcpStream::from(fd);
        sock.set_nonblocking(true)?;
        let pos = sys::tcp_positions(sock.as_fd())?;
        let written = pos.written.checked_sub(rec.base_written).context("kernel written counter below base")?;
        let consumed = pos.consumed.checked_sub(rec.base_consumed).context("kernel consumed counter below base")?;
        let region = self.region().context("framework")?.clone();
        let (mode, slab) =
            if rec.fallback { (HreadMode::Fallback, self.slab(slot)) } else { (HreadMode::PeekOff, None) };
        let deleted = match mode {
            HreadMode::PeekOff => consumed,
            HreadMode::Fallback => region.read::<HoldCtl>(T_HOLD_CTL, slot)?.unwrap_or_default().head,
        };
        if rec.stage == Stage::Sending && written.checked_sub(rec.resp_start) == Some(rec.total_len) {
            // The response went out completely: the request is done.
            rec.req_start += u64::from(rec.req_len);
            rec.req_len = 0;
            rec.bytes_sent = rec.total_len;
            rec.stage = Stage::Reading;
            if !rec.keep_alive {
                anyhow::bail!("response complete on a non-keep-alive connection: closing");
            }
        }
        let read_to = match rec.stage {
            Stage::Reading => rec.req_start,
            _ => rec.req_start + u64::from(rec.req_len),
        };
        let skip = read_to.checked_sub(deleted).context("more input deleted than processed")?;
        let reader = HoldingReader::resume(sock.as_fd(), mode, slab, skip)?;
        let mut resp = None;
        match rec.stage {
            Stage::Reading | Stage::Free => {}
            Stage::Processing => {
                // Nothing of this response was sent: the Sending record is
                // written before the first byte goes out.
                let r = if rec.status >= 400 && rec.status != 404 && rec.status != 416 {
                    let head = http::head(rec.status, &rec.path, 0, 0, 0, 0, rec.keep_alive, rec.date_secs);
                    Resp { head, file: None, body_start: 0, body_len: 0, sent: 0 }
                } else {
                    build_response(&self.root, &mut rec, false).map_err(anyhow::Error::msg)?
                };
                rec.stage = Stage::Sending;
                rec.resp_start = written;
                rec.total_len = r.total();
                rec.bytes_sent = 0;
                resp = Some(r);
            }
            Stage::Sending => {
                let mut r = if rec.file_size == 0 && rec.file_mtime == 0 && !matches!(rec.status, 200 | 206 | 416) {
                    let head = http::head(rec.status, &rec.path, 0, 0, 0, 0, rec.keep_alive, rec.date_secs);
                    Resp { head, file: None, body_start: 0, body_len: 0, sent: 0 }
                } else {
                    build_response(&self.root, &mut rec, true).map_err(anyhow::Error::msg)?
                };
                anyhow::ensure!(
                    r.total() == rec.total_len,
                    "regenerated response is {} bytes, recorded {}",
                    r.total(),
                    rec.total_len
                );
                let sent = written.checked_sub(rec.resp_start).context("output position before response start")?;
                anyhow::ensure!(
                    sent <= rec.total_len,
                    "kernel says {sent} bytes sent of a {}-byte response",
                    rec.total_len
                );
                if sent != rec.bytes_sent {
                    info!(
                        "connection {}: {} bytes sent after the last confirmation (crash between send and record)",
                        rec.conn_id,
                        sent - rec.bytes_sent.min(sent)
                    );
                }
                r.sent = sent;
                rec.bytes_sent = sent;
                info!(
                    "connection {}: resuming response {:?} at byte {sent} of {}",
                    rec.conn_id,
                    String::from_utf8_lossy(&rec.path),
                    rec.total_len
                );
                resp = Some(r);
            }
        }
        self.save(slot, &rec);
        self.install(
            slot,
            Conn { sock, reader: Some(reader), rbuf: Vec::new(), rec, resp, rx_deleted: deleted, tx: written },
        )
    }
}
