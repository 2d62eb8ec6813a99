//! Sans-IO telnet codec (RFC 854/855) with RFC 1143 option negotiation.
//!
//! The server side of a telnet connection in character mode:
//!
//! * at connect ([`TelnetCodec::start`]) it asks `WILL ECHO`, `WILL SUPPRESS-GO-AHEAD` and
//!   `DO NAWS`;
//! * it accepts the client's `WILL NAWS` / `WILL SGA` and `DO SGA` / `DO ECHO`, and refuses every
//!   other option (LINEMODE included) with `DONT` / `WONT`;
//! * every option runs the RFC 1143 "Q method" state machine, so a request is answered only when
//!   it changes state and two peers can never loop;
//! * `CR LF`, `CR NUL` and a lone `LF` all become one [`ENTER`] data byte;
//! * subnegotiations are bounded ([`MAX_SB`]); garbage, unknown commands and sequences split across
//!   reads are handled without panicking.
//!
//! Output goes through [`encode_text`] / [`encode_bytes`]: `LF` becomes `CR LF`, a lone `CR`
//! becomes `CR NUL` and `0xFF` is doubled.

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Refuse / stop an option on the peer's side.
pub const DONT: u8 = 254;
/// Ask the peer to enable an option.
pub const DO: u8 = 253;
/// Refuse / stop an option on our side.
pub const WONT: u8 = 252;
/// Offer an option on our side.
pub const WILL: u8 = 251;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Go ahead.
pub const GA: u8 = 249;
/// Erase line.
pub const EL: u8 = 248;
/// Erase character.
pub const EC: u8 = 247;
/// Are you there.
pub const AYT: u8 = 246;
/// Abort output.
pub const AO: u8 = 245;
/// Interrupt process.
pub const IP: u8 = 244;
/// Break.
pub const BRK: u8 = 243;
/// Data mark.
pub const DM: u8 = 242;
/// No operation.
pub const NOP: u8 = 241;
/// Subnegotiation end.
pub const SE: u8 = 240;

/// Option: echo.
pub const OPT_ECHO: u8 = 1;
/// Option: suppress go-ahead.
pub const OPT_SGA: u8 = 3;
/// Option: terminal type.
pub const OPT_TTYPE: u8 = 24;
/// Option: negotiate about window size.
pub const OPT_NAWS: u8 = 31;
/// Option: linemode (always refused).
pub const OPT_LINEMODE: u8 = 34;

/// The data byte that stands for Enter after CR LF / CR NUL / LF normalisation.
pub const ENTER: u8 = b'\r';

/// Largest subnegotiation payload kept; longer ones are discarded whole.
pub const MAX_SB: usize = 64;

/// What the decoder found in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One data byte (Enter arrives as [`ENTER`]).
    Data(u8),
    /// The client's window size (NAWS); zero means "unknown" per RFC 1073.
    Naws {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// `IAC IP` or `IAC BRK`: treat like Ctrl-C.
    Interrupt,
    /// `IAC EC`: erase one character.
    EraseChar,
    /// `IAC EL`: erase the line.
    EraseLine,
    /// `IAC AYT`: the driver should answer with some visible text.
    AreYouThere,
    /// `IAC AO`: abort output (stop paging).
    AbortOutput,
}

/// RFC 1143 state of one side of one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptState {
    /// Disabled.
    #[default]
    No,
    /// Enabled.
    Yes,
    /// We asked to disable and wait for the answer.
    WantNo {
        /// The opposite request was queued meanwhile.
        opposite: bool,
    },
    /// We asked to enable and wait for the answer.
    WantYes {
        /// The opposite request was queued meanwhile.
        opposite: bool,
    },
}

impl OptState {
    /// Whether the option is in effect.
    pub fn enabled(self) -> bool {
        self == OptState::Yes
    }
}

/// Decoder state between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rx {
    Data,
    /// Last data byte was CR: swallow a following LF or NUL.
    Cr,
    Iac,
    /// After `IAC WILL|WONT|DO|DONT`, holding the verb.
    Opt(u8),
    /// Inside `IAC SB`.
    Sb,
    /// `IAC` seen inside a subnegotiation.
    SbIac,
}

/// The telnet server codec: one per connection.
#[derive(Debug, Clone)]
pub struct TelnetCodec {
    rx: Rx,
    /// Our side of each option ("us" in RFC 1143).
    us: [OptState; 256],
    /// The client's side of each option ("him").
    him: [OptState; 256],
    sb: Vec<u8>,
    sb_overflow: bool,
    /// Malformed command sequences since the last [`TelnetCodec::take_errors`].
    errors: u64,
}

impl Default for TelnetCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// Options we are willing to perform ourselves.
fn we_support(opt: u8) -> bool {
    matches!(opt, OPT_ECHO | OPT_SGA)
}

/// Options we accept from the client.
fn he_may(opt: u8) -> bool {
    matches!(opt, OPT_NAWS | OPT_SGA)
}

impl TelnetCodec {
    /// A codec for a new connection (nothing negotiated yet).
    pub fn new() -> Self {
        TelnetCodec {
            rx: Rx::Data,
            us: [OptState::No; 256],
            him: [OptState::No; 256],
            sb: Vec::with_capacity(MAX_SB),
            sb_overflow: false,
            errors: 0,
        }
    }

    /// The opening negotiation to send at connect: `WILL ECHO`, `WILL SGA`, `DO NAWS`.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.request_local(OPT_ECHO, true, out);
        self.request_local(OPT_SGA, true, out);
        self.request_remote(OPT_NAWS, true, out);
    }

    /// How many malformed command sequences were seen since the last call (a byte after IAC
    /// that is no command, a stray SE, IAC inside a subnegotiation followed by anything but
    /// IAC or SE, a subnegotiation that is too long, garbled or of an option not agreed).
    /// Each was skipped; decoding goes on.
    pub fn take_errors(&mut self) -> u64 {
        std::mem::take(&mut self.errors)
    }

    /// Our state of `opt`.
    pub fn local(&self, opt: u8) -> OptState {
        self.us[opt as usize]
    }

    /// The client's state of `opt`.
    pub fn remote(&self, opt: u8) -> OptState {
        self.him[opt as usize]
    }

    /// Asks to enable (`enable`) or disable an option on our side (RFC 1143 "we want").
    pub fn request_local(&mut self, opt: u8, enable: bool, out: &mut Vec<u8>) {
        let s = &mut self.us[opt as usize];
        *s = ask(*s, enable, WILL, WONT, opt, out);
    }

    /// Asks the client to enable or disable an option on its side.
    pub fn request_remote(&mut self, opt: u8, enable: bool, out: &mut Vec<u8>) {
        let s = &mut self.him[opt as usize];
        *s = ask(*s, enable, DO, DONT, opt, out);
    }

    /// Decodes `input`, appending events to `events` and negotiation replies to `reply`.
    /// Sequences may be split anywhere across calls.
    pub fn decode(&mut self, input: &[u8], events: &mut Vec<Event>, reply: &mut Vec<u8>) {
        for &b in input {
            self.rx = match self.rx {
                Rx::Data | Rx::Cr => self.data(b, events),
                Rx::Iac => self.command(b, events),
                Rx::Opt(verb) => {
                    self.negotiate(verb, b, reply);
                    Rx::Data
                }
                Rx::Sb => {
                    if b == IAC {
                        Rx::SbIac
                    } else {
                        self.sb_push(b);
                        Rx::Sb
                    }
                }
                Rx::SbIac => match b {
                    IAC => {
                        self.sb_push(IAC);
                        Rx::Sb
                    }
                    SE => {
                        self.subnegotiation(events);
                        Rx::Data
                    }
                    // RFC 854 leaves this undefined; end the subnegotiation and treat the byte as
                    // the command that follows IAC.
                    _ => {
                        self.sb.clear();
                        self.sb_overflow = false;
                        // One malformed sequence, whatever the byte turns out to be.
                        let errors = self.errors;
                        let rx = self.command(b, events);
                        self.errors = errors + 1;
                        rx
                    }
                },
            };
        }
    }

    fn data(&mut self, b: u8, events: &mut Vec<Event>) -> Rx {
        let after_cr = self.rx == Rx::Cr;
        match b {
            IAC => Rx::Iac,
            b'\n' | 0 if after_cr => Rx::Data,
            b'\r' => {
                events.push(Event::Data(ENTER));
                Rx::Cr
            }
            b'\n' => {
                events.push(Event::Data(ENTER));
                Rx::Data
            }
            _ => {
                events.push(Event::Data(b));
                Rx::Data
            }
        }
    }

    fn command(&mut self, b: u8, events: &mut Vec<Event>) -> Rx {
        match b {
            IAC => {
                events.push(Event::Data(IAC));
                Rx::Data
            }
            WILL | WONT | DO | DONT => Rx::Opt(b),
            SB => {
                self.sb.clear();
                self.sb_overflow = false;
                Rx::Sb
            }
            IP | BRK => {
                events.push(Event::Interrupt);
                Rx::Data
            }
            EC => {
                events.push(Event::EraseChar);
                Rx::Data
            }
            EL => {
                events.push(Event::EraseLine);
                Rx::Data
            }
            AYT => {
                events.push(Event::AreYouThere);
                Rx::Data
            }
            AO => {
                events.push(Event::AbortOutput);
                Rx::Data
            }
            NOP | DM | GA => Rx::Data,
            // A stray SE, or a byte that is no telnet command: malformed, ignored.
            _ => {
                self.errors += 1;
                Rx::Data
            }
        }
    }

    fn sb_push(&mut self, b: u8) {
        if self.sb.len() < MAX_SB {
            self.sb.push(b);
        } else {
            self.sb_overflow = true;
        }
    }

    fn subnegotiation(&mut self, events: &mut Vec<Event>) {
        // The only subnegotiation we take is a well-formed NAWS once NAWS is agreed; anything
        // else (too long, wrong length, an option not agreed) is malformed and counted.
        match self.sb[..] {
            [OPT_NAWS, w1, w2, h1, h2] if !self.sb_overflow && self.him[OPT_NAWS as usize].enabled() => {
                events.push(Event::Naws { width: u16::from_be_bytes([w1, w2]), height: u16::from_be_bytes([h1, h2]) });
            }
            _ => self.errors += 1,
        }
        self.sb.clear();
        self.sb_overflow = false;
    }

    /// RFC 1143 reception of `IAC verb opt`.
    fn negotiate(&mut self, verb: u8, opt: u8, reply: &mut Vec<u8>) {
        let i = opt as usize;
        match verb {
            WILL => self.him[i] = recv_yes(self.him[i], he_may(opt), DO, DONT, opt, reply),
            WONT => self.him[i] = recv_no(self.him[i], DO, DONT, opt, reply),
            DO => self.us[i] = recv_yes(self.us[i], we_support(opt), WILL, WONT, opt, reply),
            DONT => self.us[i] = recv_no(self.us[i], WILL, WONT, opt, reply),
            _ => {}
        }
    }
}

fn send(out: &mut Vec<u8>, verb: u8, opt: u8) {
    out.extend_from_slice(&[IAC, verb, opt]);
}

/// RFC 1143: the peer sent WILL (for `him`) or DO (for `us`).
fn recv_yes(s: OptState, acceptable: bool, yes: u8, no: u8, opt: u8, out: &mut Vec<u8>) -> OptState {
    match s {
        OptState::No => {
            if acceptable {
                send(out, yes, opt);
                OptState::Yes
            } else {
                send(out, no, opt);
                OptState::No
            }
        }
        OptState::Yes => OptState::Yes,
        // Error per RFC 1143 (peer answered our DONT with WILL): settle on No.
        OptState::WantNo { opposite: false } => OptState::No,
        OptState::WantNo { opposite: true } => OptState::Yes,
        OptState::WantYes { opposite: false } => OptState::Yes,
        OptState::WantYes { opposite: true } => {
            send(out, no, opt);
            OptState::WantNo { opposite: false }
        }
    }
}

/// RFC 1143: the peer sent WONT (for `him`) or DONT (for `us`).
fn recv_no(s: OptState, yes: u8, no: u8, opt: u8, out: &mut Vec<u8>) -> OptState {
    match s {
        OptState::No => OptState::No,
        OptState::Yes => {
            send(out, no, opt);
            OptState::No
        }
        OptState::WantNo { opposite: false } => OptState::No,
        OptState::WantNo { opposite: true } => {
            send(out, yes, opt);
            OptState::WantYes { opposite: false }
        }
        OptState::WantYes { .. } => OptState::No,
    }
}

/// RFC 1143: we want the option enabled (`enable`) or disabled.
fn ask(s: OptState, enable: bool, yes: u8, no: u8, opt: u8, out: &mut Vec<u8>) -> OptState {
    match (enable, s) {
        (true, OptState::No) => {
            send(out, yes, opt);
            OptState::WantYes { opposite: false }
        }
        (true, OptState::WantNo { .. }) => OptState::WantNo { opposite: true },
        (true, OptState::WantYes { .. }) => OptState::WantYes { opposite: false },
        (false, OptState::Yes) => {
            send(out, no, opt);
            OptState::WantNo { opposite: false }
        }
        (false, OptState::WantYes { .. }) => OptState::WantYes { opposite: true },
        (false, OptState::WantNo { .. }) => OptState::WantNo { opposite: false },
        (_, s) => s,
    }
}

/// Encodes text for the wire: `LF` → `CR LF` (an existing `CR LF` is kept), a lone `CR` →
/// `CR NUL`, `0xFF` doubled.
pub fn encode_text(text: &str, out: &mut Vec<u8>) {
    encode_bytes(text.as_bytes(), out)
}

/// [`encode_text`] for raw bytes (terminal control sequences, bell).
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' => out.extend_from_slice(b"\r\0"),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            b => out.push(b),
        }
        i += 1;
    }
}

/// Images (zero-loss restart of the control plane): see [`crate::image`].
impl TelnetCodec {
    pub(crate) fn image(&self) -> crate::image::CodecImage {
        use crate::image::RxImage;
        let opt = |o: OptState| match o {
            OptState::No => crate::image::OptImage::No,
            OptState::Yes => crate::image::OptImage::Yes,
            OptState::WantNo { opposite } => crate::image::OptImage::WantNo { opposite },
            OptState::WantYes { opposite } => crate::image::OptImage::WantYes { opposite },
        };
        crate::image::CodecImage {
            rx: match self.rx {
                Rx::Data => RxImage::Data,
                Rx::Cr => RxImage::Cr,
                Rx::Iac => RxImage::Iac,
                Rx::Opt(v) => RxImage::Opt(v),
                Rx::Sb => RxImage::Sb,
                Rx::SbIac => RxImage::SbIac,
            },
            options: (0..=255u8)
                .filter(|&o| self.us[o as usize] != OptState::No || self.him[o as usize] != OptState::No)
                .map(|o| (o, opt(self.us[o as usize]), opt(self.him[o as usize])))
                .collect(),
            sb: self.sb.clone(),
            sb_overflow: self.sb_overflow,
        }
    }

    pub(crate) fn from_image(img: &crate::image::CodecImage) -> Result<TelnetCodec, crate::image::ImageError> {
        use crate::image::{ImageError, OptImage, RxImage};
        let opt = |o: OptImage| match o {
            OptImage::No => OptState::No,
            OptImage::Yes => OptState::Yes,
            OptImage::WantNo { opposite } => OptState::WantNo { opposite },
            OptImage::WantYes { opposite } => OptState::WantYes { opposite },
        };
        if img.sb.len() > MAX_SB {
            return Err(ImageError::invalid(
                "telnet subnegotiation",
                format!("{} bytes (most {MAX_SB})", img.sb.len()),
            ));
        }
        let rx = match img.rx {
            RxImage::Data => Rx::Data,
            RxImage::Cr => Rx::Cr,
            RxImage::Iac => Rx::Iac,
            RxImage::Opt(v @ (WILL | WONT | DO | DONT)) => Rx::Opt(v),
            RxImage::Opt(v) => return Err(ImageError::invalid("telnet decoder state", format!("verb {v}"))),
            RxImage::Sb => Rx::Sb,
            RxImage::SbIac => Rx::SbIac,
        };
        let mut c = TelnetCodec::new();
        c.rx = rx;
        for &(o, us, him) in &img.options {
            c.us[o as usize] = opt(us);
            c.him[o as usize] = opt(him);
        }
        c.sb.extend_from_slice(&img.sb);
        c.sb_overflow = img.sb_overflow;
        Ok(c)
    }
}

#[cfg(test)]
#[path = "telnet_tests.rs"]
mod tests;
