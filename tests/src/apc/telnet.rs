//! The server side of telnet (RFC 854) as far as an APC switch needs it.
//!
//! The `telnet` client that fence_apc drives (after `set binary`) opens by offering or asking
//! for a dozen options: BINARY both ways, ENCRYPT, SGA, TTYPE, NAWS, TSPEED, LFLOW, LINEMODE,
//! NEW-ENVIRON and STATUS. Like an embedded telnet server we announce WILL ECHO and WILL SGA
//! (the client then switches to character-at-a-time mode with its local echo off, so the
//! switch's own echo is the only one), accept BINARY both ways, and refuse everything else.
//! Option state follows RFC 1143 closely enough that no request is answered twice and no
//! negotiation can loop. Subnegotiations are skipped without buffering them.

/// Interpret As Command.
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const EL: u8 = 248;
const EC: u8 = 247;
const IP: u8 = 244;
const SE: u8 = 240;

/// Option BINARY (RFC 856).
pub const OPT_BINARY: u8 = 0;
/// Option ECHO (RFC 857).
pub const OPT_ECHO: u8 = 1;
/// Option SUPPRESS-GO-AHEAD (RFC 858).
pub const OPT_SGA: u8 = 3;

/// What the byte stream meant once the telnet commands are taken out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelnetEvent {
    /// One data byte (an escaped `IAC IAC` is the data byte 255).
    Data(u8),
    /// `IAC IP`: what a client in line mode sends for Ctrl-C.
    Interrupt,
    /// `IAC EC`: erase the last character.
    EraseChar,
    /// `IAC EL`: erase the line being typed.
    EraseLine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parse {
    Data,
    Iac,
    Verb(u8),
    Sub,
    SubIac,
}

/// One side of one option: enabled, or asked for and awaiting the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Side {
    enabled: bool,
    asked: bool,
}

/// The options we enable on our side (WILL) and let the client enable on its side (DO).
const OURS: [u8; 3] = [OPT_BINARY, OPT_ECHO, OPT_SGA];
const THEIRS: [u8; 2] = [OPT_BINARY, OPT_SGA];

/// Telnet command parser and option negotiator for one connection.
#[derive(Clone, Debug)]
pub struct Telnet {
    parse: Parse,
    us: [Side; 3],
    him: [Side; 2],
    echo_refused: bool,
}

impl Default for Telnet {
    fn default() -> Self {
        Self::new()
    }
}

impl Telnet {
    /// A connection with every option off.
    pub fn new() -> Self {
        Telnet {
            parse: Parse::Data,
            us: [Side::default(); 3],
            him: [Side::default(); 2],
            echo_refused: false,
        }
    }

    /// The negotiation the server opens with: `IAC WILL ECHO`, `IAC WILL SGA`.
    pub fn opening(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for opt in [OPT_ECHO, OPT_SGA] {
            if let Some(i) = OURS.iter().position(|&o| o == opt) {
                self.us[i].asked = true;
                out.extend_from_slice(&[IAC, WILL, opt]);
            }
        }
        out
    }

    /// Whether we currently echo (the client agreed to `WILL ECHO` or asked `DO ECHO`).
    pub fn echo_enabled(&self) -> bool {
        self.us[1].enabled
    }

    /// Whether the client said `DONT ECHO` (it echoes locally, so we must not).
    pub fn echo_refused(&self) -> bool {
        self.echo_refused
    }

    /// Whether `opt` is enabled on our side.
    pub fn local_enabled(&self, opt: u8) -> bool {
        OURS.iter()
            .position(|&o| o == opt)
            .is_some_and(|i| self.us[i].enabled)
    }

    /// Whether `opt` is enabled on the client's side.
    pub fn remote_enabled(&self, opt: u8) -> bool {
        THEIRS
            .iter()
            .position(|&o| o == opt)
            .is_some_and(|i| self.him[i].enabled)
    }

    /// Parses `bytes`: data and commands go to `events`, negotiation answers to `reply`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<TelnetEvent>, reply: &mut Vec<u8>) {
        for &b in bytes {
            self.parse = match (self.parse, b) {
                (Parse::Data, IAC) => Parse::Iac,
                (Parse::Data, _) => {
                    events.push(TelnetEvent::Data(b));
                    Parse::Data
                }
                (Parse::Iac, IAC) => {
                    events.push(TelnetEvent::Data(IAC));
                    Parse::Data
                }
                (Parse::Iac, DO | DONT | WILL | WONT) => Parse::Verb(b),
                (Parse::Iac, SB) => Parse::Sub,
                (Parse::Iac, IP) => {
                    events.push(TelnetEvent::Interrupt);
                    Parse::Data
                }
                (Parse::Iac, EC) => {
                    events.push(TelnetEvent::EraseChar);
                    Parse::Data
                }
                (Parse::Iac, EL) => {
                    events.push(TelnetEvent::EraseLine);
                    Parse::Data
                }
                // NOP, DM, BRK, AO, AYT, GA and stray SE: nothing to do.
                (Parse::Iac, _) => Parse::Data,
                (Parse::Verb(verb), opt) => {
                    self.negotiate(verb, opt, reply);
                    Parse::Data
                }
                (Parse::Sub, IAC) => Parse::SubIac,
                (Parse::Sub, _) => Parse::Sub,
                (Parse::SubIac, SE) => Parse::Data,
                (Parse::SubIac, _) => Parse::Sub,
            };
        }
    }

    fn negotiate(&mut self, verb: u8, opt: u8, reply: &mut Vec<u8>) {
        match verb {
            DO | DONT => {
                if opt == OPT_ECHO {
                    self.echo_refused = verb == DONT;
                }
                let Some(i) = OURS.iter().position(|&o| o == opt) else {
                    if verb == DO {
                        reply.extend_from_slice(&[IAC, WONT, opt]);
                    }
                    return;
                };
                let side = &mut self.us[i];
                let want = verb == DO;
                if side.enabled != want && !side.asked {
                    reply.extend_from_slice(&[IAC, if want { WILL } else { WONT }, opt]);
                }
                side.enabled = want;
                side.asked = false;
            }
            WILL | WONT => {
                let Some(i) = THEIRS.iter().position(|&o| o == opt) else {
                    if verb == WILL {
                        reply.extend_from_slice(&[IAC, DONT, opt]);
                    }
                    return;
                };
                let side = &mut self.him[i];
                let want = verb == WILL;
                if side.enabled != want && !side.asked {
                    reply.extend_from_slice(&[IAC, if want { DO } else { DONT }, opt]);
                }
                side.enabled = want;
                side.asked = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut Telnet, bytes: &[u8]) -> (Vec<TelnetEvent>, Vec<u8>) {
        let (mut ev, mut reply) = (Vec::new(), Vec::new());
        t.feed(bytes, &mut ev, &mut reply);
        (ev, reply)
    }

    /// The opening burst the Debian `telnet` client sent after `set binary` (captured).
    const CLIENT_OPENING: &[u8] = b"\xff\xfd\x00\xff\xfb\x00\xff\xfd&\xff\xfb&\xff\xfd\x03\xff\xfb\x18\xff\xfb\x1f\xff\xfb \xff\xfb!\xff\xfb\"\xff\xfb'\xff\xfd\x05";

    #[test]
    fn client_opening_is_answered_once_and_binary_and_sga_accepted() {
        let mut t = Telnet::new();
        let opening = t.opening();
        assert_eq!(opening, vec![IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA]);
        let (ev, reply) = feed(&mut t, CLIENT_OPENING);
        assert!(ev.is_empty(), "negotiation is not data: {ev:?}");
        let expected: Vec<u8> = [
            [IAC, WILL, OPT_BINARY], // DO BINARY
            [IAC, DO, OPT_BINARY],   // WILL BINARY
            [IAC, WONT, 38],         // DO ENCRYPT
            [IAC, DONT, 38],         // WILL ENCRYPT
            // DO SGA: we asked already, no answer
            [IAC, DONT, 24], // TTYPE
            [IAC, DONT, 31], // NAWS
            [IAC, DONT, 32], // TSPEED
            [IAC, DONT, 33], // LFLOW
            [IAC, DONT, 34], // LINEMODE
            [IAC, DONT, 39], // NEW-ENVIRON
            [IAC, WONT, 5],  // DO STATUS
        ]
        .concat();
        assert_eq!(reply, expected);
        assert!(t.local_enabled(OPT_SGA) && t.local_enabled(OPT_BINARY));
        assert!(t.remote_enabled(OPT_BINARY));
        assert!(!t.echo_enabled(), "echo waits for the client's DO ECHO");
        let (_, reply) = feed(&mut t, &[IAC, DO, OPT_ECHO]);
        assert!(
            reply.is_empty(),
            "an answer to our own request needs no answer"
        );
        assert!(t.echo_enabled());
    }

    #[test]
    fn repeated_requests_for_an_enabled_option_are_not_answered() {
        let mut t = Telnet::new();
        let (_, first) = feed(&mut t, &[IAC, DO, OPT_BINARY]);
        assert_eq!(first, vec![IAC, WILL, OPT_BINARY]);
        let (_, again) = feed(&mut t, &[IAC, DO, OPT_BINARY]);
        assert!(again.is_empty());
        let (_, off) = feed(&mut t, &[IAC, DONT, OPT_BINARY]);
        assert_eq!(off, vec![IAC, WONT, OPT_BINARY]);
        let (_, off_again) = feed(&mut t, &[IAC, DONT, OPT_BINARY]);
        assert!(off_again.is_empty());
    }

    #[test]
    fn escaped_iac_is_data_and_subnegotiation_is_skipped() {
        let mut t = Telnet::new();
        let bytes = [b'a', IAC, IAC, IAC, SB, 24, 0, IAC, IAC, 1, IAC, SE, b'b'];
        let (ev, reply) = feed(&mut t, &bytes);
        assert_eq!(
            ev,
            vec![
                TelnetEvent::Data(b'a'),
                TelnetEvent::Data(IAC),
                TelnetEvent::Data(b'b')
            ]
        );
        assert!(reply.is_empty());
    }

    #[test]
    fn commands_split_across_reads_are_still_understood() {
        let mut t = Telnet::new();
        let (ev1, r1) = feed(&mut t, &[b'x', IAC]);
        let (ev2, r2) = feed(&mut t, &[DO]);
        let (ev3, r3) = feed(&mut t, &[OPT_SGA, IAC]);
        let (ev4, _) = feed(&mut t, &[IP]);
        assert_eq!(ev1, vec![TelnetEvent::Data(b'x')]);
        assert!(ev2.is_empty() && ev3.is_empty() && r1.is_empty() && r2.is_empty());
        assert_eq!(r3, vec![IAC, WILL, OPT_SGA]);
        assert_eq!(ev4, vec![TelnetEvent::Interrupt]);
    }
}
