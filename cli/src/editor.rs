//! A sans-IO line editor for a character-mode terminal.
//!
//! It takes decoded data bytes one at a time, keeps the line and cursor, writes the echo (plain
//! bytes and backspaces, VT100-safe) into a caller's buffer, and reports finished lines and the
//! keys the driver must act on ([`EditEvent`]). It knows nothing of the grammar: `?` and Tab are
//! reported, and the driver answers with [`Editor::redraw`] or [`Editor::insert_str`].
//!
//! Keys: printable ASCII inserts at the cursor; Backspace/DEL and Ctrl-H delete left; Ctrl-D and
//! `ESC [ 3 ~` delete under the cursor; Ctrl-U erases the line; Ctrl-W the word before the
//! cursor; Ctrl-K to the end; Ctrl-A / Home and Ctrl-E / End; Ctrl-B / Ctrl-F and the left/right
//! arrows; Ctrl-P / Ctrl-N and the up/down arrows walk the history; Ctrl-L redraws; Ctrl-C and
//! Ctrl-Z are reported. Other bytes are ignored. Lines are at most [`MAX_LINE`] characters; more
//! rings the bell.

/// Longest line accepted.
pub const MAX_LINE: usize = 512;
/// The terminal bell.
pub const BELL: u8 = 0x07;
const BS: u8 = 0x08;

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditEvent {
    /// Enter: the finished line (the editor is cleared; the echo has the newline).
    Line(String),
    /// `?`: show help for this text (what is left of the cursor); the line is kept.
    Help(String),
    /// Tab: complete this text (what is left of the cursor).
    Complete(String),
    /// Ctrl-C: the line was abandoned (the editor is cleared).
    Interrupt,
    /// Ctrl-Z: `end` (the editor is cleared).
    CtrlZ,
    /// Ctrl-L: the driver should redraw the prompt and line.
    Redraw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// `ESC` alone so far.
    Start,
    /// `ESC [` with a numeric parameter so far.
    Csi(u16),
    /// `ESC O`.
    Ss3,
}

/// The line editor.
#[derive(Debug, Clone)]
pub struct Editor {
    buf: Vec<u8>,
    cursor: usize,
    esc: Esc,
    password: bool,
    /// Position in the history while walking it; `None` while editing a new line.
    hist: Option<usize>,
    stash: Vec<u8>,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    /// An empty editor.
    pub fn new() -> Editor {
        Editor { buf: Vec::new(), cursor: 0, esc: Esc::None, password: false, hist: None, stash: Vec::new() }
    }

    /// Password mode: nothing is echoed and `?` is an ordinary character.
    pub fn set_password(&mut self, on: bool) {
        self.password = on;
    }

    /// The line so far.
    pub fn line(&self) -> &str {
        // Only printable ASCII is ever inserted.
        std::str::from_utf8(&self.buf).unwrap_or_default()
    }

    /// The cursor position.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Forgets the line (not the history position of a new line).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.cursor = 0;
        self.esc = Esc::None;
        self.hist = None;
    }

    /// Writes the prompt and the line, leaving the cursor where it was.
    pub fn redraw(&self, prompt: &str, echo: &mut Vec<u8>) {
        echo.extend_from_slice(prompt.as_bytes());
        if !self.password {
            echo.extend_from_slice(&self.buf);
            echo.resize(echo.len() + self.buf.len() - self.cursor, BS);
        }
    }

    /// Inserts text at the cursor (Tab completion); characters past [`MAX_LINE`] are dropped.
    pub fn insert_str(&mut self, s: &str, echo: &mut Vec<u8>) {
        for b in s.bytes() {
            if (0x20..0x7f).contains(&b) {
                self.insert(b, echo);
            }
        }
    }

    /// Feeds one data byte; `history` is the session's, oldest first.
    pub fn feed(&mut self, b: u8, history: &[String], echo: &mut Vec<u8>) -> Option<EditEvent> {
        match self.esc {
            Esc::None => {}
            Esc::Start => {
                self.esc = match b {
                    b'[' => Esc::Csi(0),
                    b'O' => Esc::Ss3,
                    _ => Esc::None,
                };
                return None;
            }
            Esc::Csi(n) => {
                if b.is_ascii_digit() {
                    self.esc = Esc::Csi(n.saturating_mul(10).saturating_add(u16::from(b - b'0')));
                    return None;
                }
                self.esc = Esc::None;
                return match (b, n) {
                    (b'~', 1 | 7) => self.key_home(echo),
                    (b'~', 4 | 8) => self.key_end(echo),
                    (b'~', 3) => self.delete_at_cursor(echo),
                    (b'~', _) => None,
                    _ => self.arrow(b, history, echo),
                };
            }
            Esc::Ss3 => {
                self.esc = Esc::None;
                return self.arrow(b, history, echo);
            }
        }
        match b {
            0x1b => self.esc = Esc::Start,
            b'\r' | b'\n' => {
                self.key_end(echo);
                echo.push(b'\n');
                let line = self.line().to_string();
                self.clear();
                return Some(EditEvent::Line(line));
            }
            0x03 => {
                self.key_end(echo);
                echo.extend_from_slice(b"^C\n");
                self.clear();
                return Some(EditEvent::Interrupt);
            }
            0x1a => {
                self.key_end(echo);
                echo.extend_from_slice(b"^Z\n");
                self.clear();
                return Some(EditEvent::CtrlZ);
            }
            b'\t' if !self.password => return Some(EditEvent::Complete(self.before_cursor())),
            b'?' if !self.password => {
                echo.extend_from_slice(b"?\n");
                return Some(EditEvent::Help(self.before_cursor()));
            }
            0x0c => return Some(EditEvent::Redraw),
            0x08 | 0x7f => self.backspace(echo),
            0x04 => return self.delete_at_cursor(echo),
            0x01 => return self.key_home(echo),
            0x05 => return self.key_end(echo),
            0x02 => return self.arrow(b'D', history, echo),
            0x06 => return self.arrow(b'C', history, echo),
            0x10 => return self.arrow(b'A', history, echo),
            0x0e => return self.arrow(b'B', history, echo),
            0x15 => self.replace(Vec::new(), echo),
            0x0b => {
                let tail = self.buf.len() - self.cursor;
                self.buf.truncate(self.cursor);
                self.echo_bytes(&vec![b' '; tail], echo);
                self.echo_back(tail, echo);
            }
            0x17 => self.kill_word(echo),
            0x20..=0x7e => self.insert(b, echo),
            _ => {}
        }
        None
    }

    fn before_cursor(&self) -> String {
        String::from_utf8_lossy(&self.buf[..self.cursor]).into_owned()
    }

    fn echo_bytes(&self, bytes: &[u8], echo: &mut Vec<u8>) {
        if !self.password {
            echo.extend_from_slice(bytes);
        }
    }

    fn echo_back(&self, n: usize, echo: &mut Vec<u8>) {
        if !self.password {
            echo.resize(echo.len() + n, BS);
        }
    }

    fn insert(&mut self, b: u8, echo: &mut Vec<u8>) {
        if self.buf.len() >= MAX_LINE {
            echo.push(BELL);
            return;
        }
        self.buf.insert(self.cursor, b);
        self.cursor += 1;
        let tail = self.buf[self.cursor - 1..].to_vec();
        self.echo_bytes(&tail, echo);
        self.echo_back(tail.len() - 1, echo);
    }

    fn backspace(&mut self, echo: &mut Vec<u8>) {
        if self.cursor == 0 {
            return;
        }
        self.cursor -= 1;
        self.buf.remove(self.cursor);
        self.echo_back(1, echo);
        self.redraw_tail(1, echo);
    }

    fn delete_at_cursor(&mut self, echo: &mut Vec<u8>) -> Option<EditEvent> {
        if self.cursor < self.buf.len() {
            self.buf.remove(self.cursor);
            self.redraw_tail(1, echo);
        }
        None
    }

    /// Reprints from the cursor to the end, blanks `erased` cells after it, and returns.
    fn redraw_tail(&self, erased: usize, echo: &mut Vec<u8>) {
        let mut t = self.buf[self.cursor..].to_vec();
        t.resize(t.len() + erased, b' ');
        self.echo_bytes(&t, echo);
        self.echo_back(t.len(), echo);
    }

    fn key_home(&mut self, echo: &mut Vec<u8>) -> Option<EditEvent> {
        self.echo_back(self.cursor, echo);
        self.cursor = 0;
        None
    }

    fn key_end(&mut self, echo: &mut Vec<u8>) -> Option<EditEvent> {
        let t = self.buf[self.cursor..].to_vec();
        self.echo_bytes(&t, echo);
        self.cursor = self.buf.len();
        None
    }

    fn kill_word(&mut self, echo: &mut Vec<u8>) {
        let mut start = self.cursor;
        while start > 0 && self.buf[start - 1] == b' ' {
            start -= 1;
        }
        while start > 0 && self.buf[start - 1] != b' ' {
            start -= 1;
        }
        let n = self.cursor - start;
        if n == 0 {
            return;
        }
        self.buf.drain(start..self.cursor);
        self.echo_back(n, echo);
        self.cursor = start;
        self.redraw_tail(n, echo);
    }

    /// Replaces the whole line (history, Ctrl-U), cursor at the end.
    fn replace(&mut self, new: Vec<u8>, echo: &mut Vec<u8>) {
        self.echo_back(self.cursor, echo);
        let old = self.buf.len();
        self.buf = new;
        self.buf.truncate(MAX_LINE);
        self.cursor = self.buf.len();
        let pad = old.saturating_sub(self.buf.len());
        let mut t = self.buf.clone();
        t.resize(t.len() + pad, b' ');
        self.echo_bytes(&t, echo);
        self.echo_back(pad, echo);
    }

    fn arrow(&mut self, b: u8, history: &[String], echo: &mut Vec<u8>) -> Option<EditEvent> {
        match b {
            b'A' => {
                let pos = match self.hist {
                    None if history.is_empty() => return None,
                    None => {
                        self.stash = self.buf.clone();
                        history.len() - 1
                    }
                    Some(0) => return None,
                    Some(p) => p.min(history.len()).saturating_sub(1),
                };
                self.hist = Some(pos);
                let line = history.get(pos).map(|s| s.as_bytes().to_vec()).unwrap_or_default();
                self.replace(line, echo);
            }
            b'B' => {
                let p = self.hist?;
                if p + 1 < history.len() {
                    self.hist = Some(p + 1);
                    self.replace(history[p + 1].as_bytes().to_vec(), echo);
                } else {
                    self.hist = None;
                    let stash = std::mem::take(&mut self.stash);
                    self.replace(stash, echo);
                }
            }
            b'C' if self.cursor < self.buf.len() => {
                self.echo_bytes(&[self.buf[self.cursor]], echo);
                self.cursor += 1;
            }
            b'D' if self.cursor > 0 => {
                self.cursor -= 1;
                self.echo_back(1, echo);
            }
            b'H' => return self.key_home(echo),
            b'F' => return self.key_end(echo),
            _ => {}
        }
        None
    }
}

/// Images (zero-loss restart of the control plane): see [`crate::image`].
impl Editor {
    pub(crate) fn image(&self) -> crate::image::EditorImage {
        use crate::image::EscImage;
        crate::image::EditorImage {
            line: self.line().to_string(),
            cursor: self.cursor,
            esc: match self.esc {
                Esc::None => EscImage::None,
                Esc::Start => EscImage::Start,
                Esc::Csi(n) => EscImage::Csi(n),
                Esc::Ss3 => EscImage::Ss3,
            },
            password: self.password,
            hist: self.hist,
            stash: String::from_utf8_lossy(&self.stash).into_owned(),
        }
    }

    pub(crate) fn from_image(img: &crate::image::EditorImage) -> Result<Editor, crate::image::ImageError> {
        use crate::image::{EscImage, ImageError};
        let printable = |s: &str| s.len() <= MAX_LINE && s.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !printable(&img.line) {
            return Err(ImageError::invalid("editor line", format!("{} bytes or not printable ASCII", img.line.len())));
        }
        if !printable(&img.stash) {
            return Err(ImageError::invalid("editor stash", "too long or not printable ASCII"));
        }
        if img.cursor > img.line.len() {
            return Err(ImageError::invalid(
                "editor cursor",
                format!("{} beyond a {}-byte line", img.cursor, img.line.len()),
            ));
        }
        Ok(Editor {
            buf: img.line.as_bytes().to_vec(),
            cursor: img.cursor,
            esc: match img.esc {
                EscImage::None => Esc::None,
                EscImage::Start => Esc::Start,
                EscImage::Csi(n) => Esc::Csi(n),
                EscImage::Ss3 => Esc::Ss3,
            },
            password: img.password,
            hist: img.hist,
            stash: img.stash.as_bytes().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds bytes; returns events and the echo.
    fn feed(e: &mut Editor, bytes: &[u8], hist: &[String]) -> (Vec<EditEvent>, Vec<u8>) {
        let mut echo = Vec::new();
        let ev = bytes.iter().filter_map(|&b| e.feed(b, hist, &mut echo)).collect();
        (ev, echo)
    }

    /// What a dumb terminal would show for the echo: apply BS as cursor-left over a line.
    fn screen(echo: &[u8]) -> String {
        let mut line: Vec<u8> = Vec::new();
        let mut col = 0;
        for &b in echo {
            match b {
                BS => col -= 1,
                b'\n' => {
                    line.clear();
                    col = 0
                }
                _ => {
                    if col == line.len() {
                        line.push(b);
                    } else {
                        line[col] = b;
                    }
                    col += 1;
                }
            }
        }
        String::from_utf8(line).unwrap().trim_end().to_string()
    }

    #[test]
    fn typing_and_enter() {
        let mut e = Editor::new();
        let (ev, echo) = feed(&mut e, b"show ver\r", &[]);
        assert_eq!(ev, [EditEvent::Line("show ver".into())]);
        assert_eq!(echo, b"show ver\n");
        assert_eq!(e.line(), "");
    }

    #[test]
    fn backspace_del_and_midline_edits() {
        let mut e = Editor::new();
        let (_, echo) = feed(&mut e, b"shox\x7fw\x08w", &[]);
        assert_eq!(e.line(), "show");
        assert_eq!(screen(&echo), "show");
        // Left twice, insert, screen stays consistent.
        let (_, echo2) = feed(&mut e, b"\x1b[D\x1b[DX", &[]);
        assert_eq!(e.line(), "shXow");
        let all = [echo, echo2].concat();
        assert_eq!(screen(&all), "shXow");
        // Ctrl-A, Ctrl-D deletes the first char; Ctrl-E then type.
        let (_, echo3) = feed(&mut e, b"\x01\x04\x05!", &[]);
        assert_eq!(e.line(), "hXow!");
        assert_eq!(screen(&[all, echo3].concat()), "hXow!");
    }

    #[test]
    fn ctrl_u_and_ctrl_w() {
        let mut e = Editor::new();
        let (_, echo) = feed(&mut e, b"show server  bind\x17", &[]);
        assert_eq!(e.line(), "show server  ");
        let (_, echo2) = feed(&mut e, b"\x17", &[]);
        assert_eq!(e.line(), "show ");
        assert_eq!(screen(&[echo.clone(), echo2.clone()].concat()), "show");
        let (_, echo3) = feed(&mut e, b"\x15", &[]);
        assert_eq!(e.line(), "");
        assert_eq!(screen(&[echo, echo2, echo3].concat()), "");
    }

    #[test]
    fn history_up_down() {
        let hist = vec!["show version".to_string(), "show server bind".to_string()];
        let mut e = Editor::new();
        let (_, echo) = feed(&mut e, b"wr\x1b[A", &hist);
        assert_eq!(e.line(), "show server bind");
        let (_, echo2) = feed(&mut e, b"\x1b[A\x1b[A", &hist);
        assert_eq!(e.line(), "show version");
        let (_, echo3) = feed(&mut e, b"\x1bOB", &hist);
        assert_eq!(e.line(), "show server bind");
        let (_, echo4) = feed(&mut e, b"\x0e", &hist);
        assert_eq!(e.line(), "wr", "back to the stashed line");
        assert_eq!(screen(&[echo, echo2, echo3, echo4].concat()), "wr");
        let (ev, _) = feed(&mut e, b"\x10\r", &hist);
        assert_eq!(ev, [EditEvent::Line("show server bind".into())]);
    }

    #[test]
    fn help_tab_interrupt_ctrl_z() {
        let mut e = Editor::new();
        let (ev, echo) = feed(&mut e, b"sh ser ?", &[]);
        assert_eq!(ev, [EditEvent::Help("sh ser ".into())]);
        assert!(echo.ends_with(b"?\n"));
        assert_eq!(e.line(), "sh ser ", "line kept after ?");
        let (ev, _) = feed(&mut e, b"b\t", &[]);
        assert_eq!(ev, [EditEvent::Complete("sh ser b".into())]);
        let mut echo = Vec::new();
        e.insert_str("ind ", &mut echo);
        assert_eq!(e.line(), "sh ser bind ");
        assert_eq!(echo, b"ind ");
        let (ev, echo) = feed(&mut e, b"\x01\x03", &[]);
        assert_eq!(ev, [EditEvent::Interrupt]);
        assert!(echo.ends_with(b"sh ser bind ^C\n"), "cursor moved to the end first: {echo:?}");
        assert_eq!(e.line(), "");
        let (ev, _) = feed(&mut e, b"abc\x1a", &[]);
        assert_eq!(ev, [EditEvent::CtrlZ]);
    }

    #[test]
    fn password_mode_echoes_nothing() {
        let mut e = Editor::new();
        e.set_password(true);
        let (ev, echo) = feed(&mut e, b"a?b\x7fc\r", &[]);
        assert_eq!(ev, [EditEvent::Line("a?c".into())]);
        assert_eq!(echo, b"\n");
    }

    #[test]
    fn overlong_line_rings_bell() {
        let mut e = Editor::new();
        let input = vec![b'x'; MAX_LINE + 10];
        let (_, echo) = feed(&mut e, &input, &[]);
        assert_eq!(e.line().len(), MAX_LINE);
        assert_eq!(echo.iter().filter(|&&b| b == BELL).count(), 10);
    }

    #[test]
    fn garbage_is_ignored() {
        let mut e = Editor::new();
        let (ev, _) = feed(
            &mut e,
            &[0x80, 0xff, 0x00, 0x1b, b'[', b'9', b'9', b'9', b'9', b'9', b'~', b'a', 0x1b, b'x', b'b'],
            &[],
        );
        assert!(ev.is_empty());
        assert_eq!(e.line(), "ab");
    }
}
