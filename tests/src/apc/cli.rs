//! AOS v6 command line: `olStatus`, `olOn`, `olOff`, `olReboot`, `help`, `exit`.
//!
//! fence_apc switches to this mode when the login banner's first `v<digits>.` is v5, v6 or v7,
//! waits for the prompt `\napc>`, and parses `olStatus all` lines with
//! `^\s*(\d+): (.*): (On|Off)\s*$`. Replies start with an APC error code (`E000: Success`,
//! `E101: Command Not Found`, `E102: Parameter Error`), as AOS does.

use super::model::{Command, OutletAction, SwitchModel};

/// The prompt, written after every reply.
pub const PROMPT: &str = "apc>";

/// What a command line asks of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliOutcome {
    /// Stay logged in.
    Stay,
    /// Log out and close the connection.
    Logout,
}

/// The login banner of a v6 switch, ending in the first prompt.
pub fn banner(out: &mut Vec<u8>) {
    put(
        out,
        "\r\n\r\nAmerican Power Conversion               Network Management Card AOS      v6.4.6\r\n\
         (c) Copyright 2016 All Rights Reserved  RPDU 2g APP                      v6.4.6\r\n\
         -------------------------------------------------------------------------------\r\n\
         Name      : apcsim                                    Date : 01/01/2016\r\n\
         Contact   : Unknown                                   Time : 00:00:00\r\n\
         Location  : Unknown                                   User : Super User\r\n\
         Up Time   : 0 Days 0 Hours 0 Minutes                  Stat : P+ N4+ N6+ A+\r\n\
         \r\n\
         Type ? for command listing\r\n\
         Use tcpip command for IP address(-i), subnet(-s), and gateway(-g)\r\n\r\n",
    );
    put(out, PROMPT);
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Parses an outlet list: `all`, `N`, `N-M` and comma-separated mixes. None when any part
/// names an outlet the switch lacks or is malformed.
pub fn outlet_set(arg: &str, count: u32) -> Option<Vec<u32>> {
    if arg.eq_ignore_ascii_case("all") {
        return Some((1..=count).collect());
    }
    let mut set = std::collections::BTreeSet::new();
    for part in arg.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        if lo == 0 || lo > hi || hi > count {
            return None;
        }
        set.extend(lo..=hi);
    }
    (!set.is_empty()).then(|| set.into_iter().collect())
}

/// Runs one command line; the reply and the next prompt go to `out`.
pub fn run(
    line: &str,
    model: &mut SwitchModel,
    out: &mut Vec<u8>,
    actions: &mut Vec<OutletAction>,
) -> CliOutcome {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        put(out, PROMPT);
        return CliOutcome::Stay;
    };
    let arg = words.next();
    let extra = words.next().is_some();
    let cmd = cmd.to_ascii_lowercase();
    match cmd.as_str() {
        "exit" | "quit" | "bye" => {
            put(out, "Bye.\r\n\r\nConnection Closed - Bye\r\n");
            return CliOutcome::Logout;
        }
        "?" | "help" => put(
            out,
            "E000: Success\r\n\
             System Commands:\r\n\
             ---------------------------------------------------------------------------\r\n\
             ?         bye       exit      help      quit\r\n\r\n\
             Device Commands:\r\n\
             ---------------------------------------------------------------------------\r\n\
             olOff     olOn      olReboot  olStatus\r\n",
        ),
        "olstatus" | "oloff" | "olon" | "olreboot" => {
            let set = if extra {
                None
            } else {
                match (cmd.as_str(), arg) {
                    ("olstatus", None) => outlet_set("all", model.count()),
                    (_, Some(a)) => outlet_set(a, model.count()),
                    (_, None) => None,
                }
            };
            let Some(set) = set else {
                put(out, "E102: Parameter Error\r\n");
                put(out, PROMPT);
                return CliOutcome::Stay;
            };
            let command = match cmd.as_str() {
                "olon" => Some(Command::On),
                "oloff" => Some(Command::Off),
                "olreboot" => Some(Command::Reboot),
                _ => None,
            };
            if let Some(command) = command {
                for &n in &set {
                    actions.extend(model.command(n, command));
                }
            }
            put(out, "E000: Success\r\n");
            for n in set {
                if let Some(o) = model.outlet(n) {
                    put(
                        out,
                        &format!(" {n}: {}: {}\r\n", o.name, o.power.cli_word()),
                    );
                }
            }
        }
        _ => put(out, "E101: Command Not Found\r\n"),
    }
    put(out, PROMPT);
    CliOutcome::Stay
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apc::model::Power;

    #[test]
    fn outlet_sets_accept_all_ranges_and_lists_and_reject_strangers() {
        assert_eq!(outlet_set("all", 3), Some(vec![1, 2, 3]));
        assert_eq!(outlet_set("ALL", 2), Some(vec![1, 2]));
        assert_eq!(outlet_set("2", 3), Some(vec![2]));
        assert_eq!(outlet_set("1-2,3,1", 4), Some(vec![1, 2, 3]));
        for bad in ["0", "5", "2-1", "x", "", "1,", "1-", "-1"] {
            assert_eq!(outlet_set(bad, 4), None, "{bad:?}");
        }
    }

    #[test]
    fn commands_are_case_insensitive_and_report_each_outlet() {
        let mut m = SwitchModel::new(3).unwrap();
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        run("OLOFF 1-2", &mut m, &mut out, &mut actions);
        assert_eq!(actions, vec![OutletAction::Off(1), OutletAction::Off(2)]);
        assert_eq!(m.outlet(2).unwrap().power, Power::Off);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "E000: Success\r\n 1: Outlet 1: Off\r\n 2: Outlet 2: Off\r\napc>"
        );
    }

    #[test]
    fn bad_arguments_and_unknown_commands_change_nothing() {
        let mut m = SwitchModel::new(2).unwrap();
        let before = m.clone();
        for line in ["olOff", "olOff 3", "olOn 1 2", "reboot 1", "olStatus 9"] {
            let (mut out, mut actions) = (Vec::new(), Vec::new());
            assert_eq!(run(line, &mut m, &mut out, &mut actions), CliOutcome::Stay);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("E10"), "{line}: {text}");
            assert!(text.ends_with(PROMPT));
            assert!(actions.is_empty());
        }
        assert_eq!(m, before);
    }
}
