//! The switch: its outlets, their power, its credentials and firmware; the state file.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// The most outlets a simulated switch has (a daisy chain of real ones tops out lower).
pub const MAX_OUTLETS: u32 = 64;
/// The longest outlet name, as on the real switch's configuration screen.
pub const MAX_NAME_LEN: usize = 23;

/// Power state of one outlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    /// Powered.
    On,
    /// Not powered.
    Off,
}

impl Power {
    /// `ON` / `OFF`, as the menu screens print it.
    pub fn menu_word(self) -> &'static str {
        match self {
            Power::On => "ON",
            Power::Off => "OFF",
        }
    }

    /// `On` / `Off`, as the CLI prints it.
    pub fn cli_word(self) -> &'static str {
        match self {
            Power::On => "On",
            Power::Off => "Off",
        }
    }
}

/// One outlet of the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlet {
    /// The outlet's name (its alias in `fence_apc -o list`).
    pub name: String,
    /// Its power state.
    pub power: Power,
}

/// Which user interface the switch's firmware offers after login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// AOS v3 menus (fence_apc's menu mode; every fence_apc generation handles it).
    MenuV3,
    /// AOS v6 command line (fence_apc's CLI mode; modern fence-agents only).
    CliV6,
}

impl Firmware {
    /// Parses `v3` or `v6` (as given to `apcsim --firmware`).
    pub fn parse(s: &str) -> Result<Firmware, ApcError> {
        match s {
            "v3" | "3" | "menu" => Ok(Firmware::MenuV3),
            "v6" | "6" | "cli" => Ok(Firmware::CliV6),
            _ => Err(ApcError::BadFirmware {
                given: s.to_string(),
            }),
        }
    }
}

/// A change to one outlet, requested through the switch's user interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutletAction {
    /// Immediate On (reported only when the outlet was off).
    On(u32),
    /// Immediate Off (reported only when the outlet was on).
    Off(u32),
    /// Immediate Reboot: off now (already done in the model), on again after the reboot delay.
    Reboot(u32),
}

/// Everything the dialog needs to know about the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchModel {
    /// Menu (v3) or CLI (v6) firmware.
    pub firmware: Firmware,
    /// The user name accepted at `User Name :`.
    pub login: String,
    /// The password accepted at `Password  :`.
    pub password: String,
    /// Outlets 1..=N, in order.
    pub outlets: Vec<Outlet>,
    /// Outlet lines per page of the menu's outlet list; 0 never pages.
    pub page_size: usize,
}

impl SwitchModel {
    /// `count` outlets named `Outlet N`, all on; login `apc`, password `apc` (the factory
    /// default), v3 menu firmware, no paging.
    pub fn new(count: u32) -> Result<SwitchModel, ApcError> {
        if count == 0 || count > MAX_OUTLETS {
            return Err(ApcError::BadOutletCount { count });
        }
        let outlets = (1..=count)
            .map(|n| Outlet {
                name: format!("Outlet {n}"),
                power: Power::On,
            })
            .collect();
        Ok(SwitchModel {
            firmware: Firmware::MenuV3,
            login: "apc".to_string(),
            password: "apc".to_string(),
            outlets,
            page_size: 0,
        })
    }

    /// Renames outlet `n`. The name must be 1..=23 printable ASCII characters, not starting
    /// or ending with a space (the agent's list parser trims them).
    pub fn rename(&mut self, n: u32, name: &str) -> Result<(), ApcError> {
        check_name(n, name)?;
        let count = self.count();
        let outlet = self
            .outlet_mut(n)
            .ok_or(ApcError::NoSuchOutlet { outlet: n, count })?;
        outlet.name = name.to_string();
        Ok(())
    }

    /// Number of outlets.
    pub fn count(&self) -> u32 {
        u32::try_from(self.outlets.len()).unwrap_or(u32::MAX)
    }

    /// Outlet `n` (1-based).
    pub fn outlet(&self, n: u32) -> Option<&Outlet> {
        let i = usize::try_from(n.checked_sub(1)?).ok()?;
        self.outlets.get(i)
    }

    fn outlet_mut(&mut self, n: u32) -> Option<&mut Outlet> {
        let i = usize::try_from(n.checked_sub(1)?).ok()?;
        self.outlets.get_mut(i)
    }

    /// Sets outlet `n` to `power`; returns whether that changed anything.
    pub fn set_power(&mut self, n: u32, power: Power) -> bool {
        match self.outlet_mut(n) {
            Some(o) if o.power != power => {
                o.power = power;
                true
            }
            _ => false,
        }
    }

    /// Carries out an outlet command as the switch does at once, and returns the action to
    /// report, if any: On/Off only when they change the outlet, Reboot always (the outlet is
    /// off now; powering it on again after the delay is the server's job).
    pub fn command(&mut self, n: u32, command: Command) -> Option<OutletAction> {
        self.outlet(n)?;
        match command {
            Command::On => self.set_power(n, Power::On).then_some(OutletAction::On(n)),
            Command::Off => self
                .set_power(n, Power::Off)
                .then_some(OutletAction::Off(n)),
            Command::Reboot => {
                self.set_power(n, Power::Off);
                Some(OutletAction::Reboot(n))
            }
        }
    }

    /// The state file's JSON for the current outlets.
    pub fn state_json(&self) -> String {
        let file = StateFile {
            outlets: self
                .outlets
                .iter()
                .zip(1u32..)
                .map(|(o, n)| OutletRecord {
                    outlet: n,
                    name: o.name.clone(),
                    power: o.power,
                })
                .collect(),
        };
        // Serializing plain strings, numbers and enums cannot fail.
        serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
    }

    /// Replaces names and power states from a state file's JSON. The file must list exactly
    /// outlets 1..=N of this switch, in order; on error nothing is changed.
    pub fn load_state_json(&mut self, path: &std::path::Path, json: &str) -> Result<(), ApcError> {
        let file: StateFile = serde_json::from_str(json).map_err(|e| ApcError::StateParse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        if file.outlets.len() != self.outlets.len() {
            return Err(ApcError::StateMismatch {
                path: path.to_path_buf(),
                found: file.outlets.len(),
                expected: self.outlets.len(),
            });
        }
        for (rec, n) in file.outlets.iter().zip(1u32..) {
            if rec.outlet != n {
                return Err(ApcError::StateParse {
                    path: path.to_path_buf(),
                    detail: format!("entry {n} is for outlet {}", rec.outlet),
                });
            }
            check_name(n, &rec.name)?;
        }
        for (o, rec) in self.outlets.iter_mut().zip(file.outlets) {
            o.name = rec.name;
            o.power = rec.power;
        }
        Ok(())
    }
}

/// An outlet command of the Control Outlet menu or the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Immediate On / `olOn`.
    On,
    /// Immediate Off / `olOff`.
    Off,
    /// Immediate Reboot / `olReboot`.
    Reboot,
}

fn check_name(n: u32, name: &str) -> Result<(), ApcError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !name.starts_with(' ')
        && !name.ends_with(' ');
    if ok {
        Ok(())
    } else {
        Err(ApcError::BadOutletName {
            outlet: n,
            name: name.to_string(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    outlets: Vec<OutletRecord>,
}

#[derive(Serialize, Deserialize)]
struct OutletRecord {
    outlet: u32,
    name: String,
    power: Power,
}

/// Errors of the APC simulator: its configuration, state file and listening socket.
#[derive(Debug)]
pub enum ApcError {
    /// An outlet count outside 1..=64. Nothing was built.
    BadOutletCount {
        /// The count asked for.
        count: u32,
    },
    /// An outlet name that is empty, too long or not printable ASCII. Nothing was changed.
    BadOutletName {
        /// The outlet.
        outlet: u32,
        /// The rejected name.
        name: String,
    },
    /// An outlet number the switch does not have. Nothing was changed.
    NoSuchOutlet {
        /// The outlet asked for.
        outlet: u32,
        /// How many outlets the switch has.
        count: u32,
    },
    /// A firmware other than v3 or v6. Nothing was built.
    BadFirmware {
        /// What was given.
        given: String,
    },
    /// The state file could not be read. The switch keeps its defaults.
    StateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The state file is not valid state JSON. The switch keeps its defaults.
    StateParse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The state file lists a different number of outlets. The switch keeps its defaults.
    StateMismatch {
        /// The file.
        path: PathBuf,
        /// Outlets in the file.
        found: usize,
        /// Outlets of the switch.
        expected: usize,
    },
    /// The state file could not be written. The in-memory state has changed regardless.
    StateWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The listening socket failed. The server stopped accepting connections.
    Listen {
        /// Why.
        source: io::Error,
    },
}

impl fmt::Display for ApcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApcError::BadOutletCount { count } => {
                write!(f, "outlet count {count} is not in 1..={MAX_OUTLETS}")
            }
            ApcError::BadOutletName { outlet, name } => write!(
                f,
                "outlet {outlet}: name {name:?} must be 1..={MAX_NAME_LEN} printable ascii characters without leading or trailing spaces"
            ),
            ApcError::NoSuchOutlet { outlet, count } => {
                write!(f, "no outlet {outlet}: the switch has outlets 1..={count}")
            }
            ApcError::BadFirmware { given } => {
                write!(f, "firmware {given:?} is neither v3 (menus) nor v6 (cli)")
            }
            ApcError::StateRead { path, .. } => {
                write!(f, "cannot read state file {}", path.display())
            }
            ApcError::StateParse { path, detail } => {
                write!(f, "state file {}: {detail}", path.display())
            }
            ApcError::StateMismatch {
                path,
                found,
                expected,
            } => write!(
                f,
                "state file {} lists {found} outlets, the switch has {expected}",
                path.display()
            ),
            ApcError::StateWrite { path, .. } => {
                write!(f, "cannot write state file {}", path.display())
            }
            ApcError::Listen { .. } => write!(f, "listening socket failed"),
        }
    }
}

impl std::error::Error for ApcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApcError::StateRead { source, .. }
            | ApcError::StateWrite { source, .. }
            | ApcError::Listen { source } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn outlet_counts_outside_the_range_are_rejected() {
        assert!(SwitchModel::new(0).is_err());
        assert!(SwitchModel::new(MAX_OUTLETS + 1).is_err());
        assert_eq!(SwitchModel::new(8).unwrap().count(), 8);
    }

    #[test]
    fn on_and_off_are_reported_only_when_they_change_the_outlet() {
        let mut m = SwitchModel::new(2).unwrap();
        assert_eq!(m.command(1, Command::On), None);
        assert_eq!(m.command(1, Command::Off), Some(OutletAction::Off(1)));
        assert_eq!(m.command(1, Command::Off), None);
        assert_eq!(m.command(1, Command::On), Some(OutletAction::On(1)));
        assert_eq!(m.command(2, Command::Reboot), Some(OutletAction::Reboot(2)));
        assert_eq!(m.outlet(2).unwrap().power, Power::Off);
        assert_eq!(m.command(3, Command::On), None, "no outlet 3");
    }

    #[test]
    fn state_json_round_trips_and_mismatches_change_nothing() {
        let mut m = SwitchModel::new(3).unwrap();
        m.rename(2, "node2").unwrap();
        m.set_power(3, Power::Off);
        let json = m.state_json();
        assert!(json.contains("\"power\": \"off\""), "{json}");
        let mut fresh = SwitchModel::new(3).unwrap();
        fresh.load_state_json(Path::new("s.json"), &json).unwrap();
        assert_eq!(fresh, m);

        let mut four = SwitchModel::new(4).unwrap();
        let before = four.clone();
        assert!(matches!(
            four.load_state_json(Path::new("s.json"), &json),
            Err(ApcError::StateMismatch {
                found: 3,
                expected: 4,
                ..
            })
        ));
        assert_eq!(four, before);
        assert!(four.load_state_json(Path::new("s.json"), "{").is_err());
    }

    #[test]
    fn names_must_be_short_printable_and_trimmed() {
        let mut m = SwitchModel::new(1).unwrap();
        for bad in ["", " x", "x ", "a\tb", "abcdefghijklmnopqrstuvwx", "é"] {
            assert!(m.rename(1, bad).is_err(), "{bad:?} accepted");
        }
        m.rename(1, "web server 1").unwrap();
        assert!(m.rename(2, "x").is_err());
    }
}
