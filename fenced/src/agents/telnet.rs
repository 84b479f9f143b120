//! The telnet layer of a client, without the socket (RFC 854/855).
//!
//! Received bytes go through [`TelnetCodec::decode`], which returns the data bytes and the
//! negotiation answers to send back. Policy: the server may ECHO, SUPPRESS-GO-AHEAD and
//! BINARY (a switch says WILL ECHO so that nothing is echoed twice); we offer BINARY and
//! SUPPRESS-GO-AHEAD; everything else is refused. Each option is answered only when its state
//! changes, so two sides can never loop (RFC 1143's point). Subnegotiations are skipped.
//!
//! ```text
//!  Data --IAC--> Iac --WILL/WONT/DO/DONT--> Opt(cmd) --option--> Data (answer if needed)
//!                 |--IAC--> Data (a literal 0xff)
//!                 |--SB--> Sub --IAC--> SubIac --SE--> Data
//!                 '--other command (NOP, GA, ...)--> Data
//! ```

use std::collections::BTreeSet;

/// Interpret As Command.
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const SE: u8 = 240;
/// Option: binary transmission.
pub const BINARY: u8 = 0;
/// Option: echo.
pub const ECHO: u8 = 1;
/// Option: suppress go-ahead.
pub const SGA: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Data,
    Iac,
    Opt(u8),
    Sub,
    SubIac,
}

/// A telnet client's receive side and negotiation state.
#[derive(Clone, Debug)]
pub struct TelnetCodec {
    state: State,
    /// Options the server does (it said WILL, we said DO).
    remote: BTreeSet<u8>,
    /// Options we do (it said DO, we said WILL).
    local: BTreeSet<u8>,
    /// Options we refused already, by command, so a repeated request gets no second answer.
    refused: BTreeSet<(u8, u8)>,
}

impl Default for TelnetCodec {
    fn default() -> Self {
        TelnetCodec {
            state: State::Data,
            remote: BTreeSet::new(),
            local: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }
}

impl TelnetCodec {
    /// Splits `input` into data (appended to `data`) and answers (appended to `reply`).
    pub fn decode(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) {
        for &b in input {
            self.state = match (self.state, b) {
                (State::Data, IAC) => State::Iac,
                (State::Data, b) => {
                    data.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    data.push(IAC);
                    State::Data
                }
                (State::Iac, WILL | WONT | DO | DONT) => State::Opt(b),
                (State::Iac, SB) => State::Sub,
                (State::Iac, _) => State::Data,
                (State::Opt(cmd), opt) => {
                    self.negotiate(cmd, opt, reply);
                    State::Data
                }
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }

    fn negotiate(&mut self, cmd: u8, opt: u8, reply: &mut Vec<u8>) {
        let answer = match cmd {
            WILL if matches!(opt, ECHO | SGA | BINARY) => self.remote.insert(opt).then_some(DO),
            WILL => self.refused.insert((WILL, opt)).then_some(DONT),
            WONT => self.remote.remove(&opt).then_some(DONT),
            DO if matches!(opt, SGA | BINARY) => self.local.insert(opt).then_some(WILL),
            DO => self.refused.insert((DO, opt)).then_some(WONT),
            _ => self.local.remove(&opt).then_some(WONT),
        };
        if let Some(a) = answer {
            reply.extend_from_slice(&[IAC, a, opt]);
        }
    }

    /// Whether the server has agreed to echo (then it echoes what we type).
    pub fn server_echoes(&self) -> bool {
        self.remote.contains(&ECHO)
    }
}

/// Escapes data for sending: a 0xff byte is doubled.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for &b in data {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(codec: &mut TelnetCodec, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut data, mut reply) = (Vec::new(), Vec::new());
        codec.decode(input, &mut data, &mut reply);
        (data, reply)
    }

    #[test]
    fn will_echo_is_accepted_once_and_other_options_refused_once() {
        let mut c = TelnetCodec::default();
        let (data, reply) = run(
            &mut c,
            &[IAC, WILL, ECHO, IAC, WILL, SGA, b'h', b'i', IAC, WILL, ECHO],
        );
        assert_eq!(data, b"hi");
        assert_eq!(reply, vec![IAC, DO, ECHO, IAC, DO, SGA]);
        assert!(c.server_echoes());
        let (_, reply) = run(&mut c, &[IAC, DO, 24, IAC, DO, 24, IAC, WILL, 31]);
        assert_eq!(reply, vec![IAC, WONT, 24, IAC, DONT, 31]);
        let (_, reply) = run(&mut c, &[IAC, DO, BINARY, IAC, WONT, ECHO]);
        assert_eq!(reply, vec![IAC, WILL, BINARY, IAC, DONT, ECHO]);
    }

    #[test]
    fn subnegotiations_and_commands_are_stripped_and_iac_iac_is_data() {
        let mut c = TelnetCodec::default();
        let input = [
            b'a', IAC, SB, 24, 1, IAC, SE, b'b', IAC, 241, IAC, IAC, b'c',
        ];
        assert_eq!(run(&mut c, &input), (vec![b'a', b'b', IAC, b'c'], vec![]));
    }

    #[test]
    fn sequences_split_across_reads_decode_the_same() {
        let input = [b'x', IAC, WILL, ECHO, IAC, IAC, b'y'];
        for cut in 0..=input.len() {
            let mut c = TelnetCodec::default();
            let (mut d1, r1) = run(&mut c, &input[..cut]);
            let (d2, r2) = run(&mut c, &input[cut..]);
            d1.extend(d2);
            assert_eq!(d1, vec![b'x', IAC, b'y']);
            assert_eq!([r1, r2].concat(), vec![IAC, DO, ECHO]);
        }
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_plain_data_passes_unchanged(
            noise in proptest::collection::vec(any::<u8>(), 0..256),
            text in proptest::collection::vec(0u8..255, 0..64),
        ) {
            let mut c = TelnetCodec::default();
            let (mut d, mut r) = (Vec::new(), Vec::new());
            c.decode(&noise, &mut d, &mut r);
            prop_assert_eq!(r.len() % 3, 0);
            let mut fresh = TelnetCodec::default();
            let (data, reply) = run(&mut fresh, &encode(&text));
            prop_assert_eq!(data, text);
            prop_assert!(reply.is_empty());
        }
    }
}
