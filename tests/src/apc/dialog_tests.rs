//! Scripted sessions through the pure dialog core, and a property test over random input.

use super::menu::Screen;
use super::model::{Command, Firmware, OutletAction, Power, SwitchModel};
use super::session::{ApcSession, MAX_LINE};
use proptest::prelude::*;

/// A session and the model it changes, with everything the switch said.
struct Script {
    model: SwitchModel,
    session: ApcSession,
    actions: Vec<OutletAction>,
}

impl Script {
    fn new(model: SwitchModel) -> (Script, Vec<u8>) {
        let (session, hello) = ApcSession::new(&model);
        let script = Script {
            model,
            session,
            actions: Vec::new(),
        };
        (script, hello)
    }

    /// Logged in with the default credentials.
    fn logged_in(model: SwitchModel) -> Script {
        let (mut s, _) = Script::new(model);
        s.send("apc\r\n");
        let out = s.send("apc\r\n");
        assert!(s.session.logged_in(), "login failed: {out}");
        s
    }

    fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> String {
        let (out, actions) = self.session.input(&mut self.model, input);
        self.actions.extend(actions);
        text(&out)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn model(outlets: u32) -> SwitchModel {
    SwitchModel::new(outlets).unwrap()
}

/// fence_apc's firmware probe: the digit captured by the first match of `\s*v(\d)*\.`.
fn agent_firmware_digit(s: &str) -> Option<Option<char>> {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'v' {
            continue;
        }
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if b.get(i + 1 + digits) == Some(&b'.') {
            return Some((digits > 0).then(|| b[i + digits] as char));
        }
    }
    None
}

/// fence_apc's menu-mode list parser: per `\n`-separated line,
/// `(^|\r)\s*(\d+)- (.*?)\s+(ON|OFF)\s*`, later lines overwriting earlier ones.
fn agent_outlets(before: &str) -> Vec<(u32, String, String)> {
    let mut found: Vec<(u32, String, String)> = Vec::new();
    for line in before.split('\n') {
        let l = line.trim_start_matches(['\r', ' ', '\t']);
        let digits: String = l.chars().take_while(|c| c.is_ascii_digit()).collect();
        let Some(rest) = l[digits.len()..].strip_prefix("- ") else {
            continue;
        };
        let rest = rest.trim_end();
        for state in ["ON", "OFF"] {
            if let Some(alias) = rest.strip_suffix(state) {
                if alias.ends_with(char::is_whitespace) && !digits.is_empty() {
                    let n = digits.parse().unwrap();
                    found.retain(|f| f.0 != n);
                    found.push((n, alias.trim_end().to_string(), state.to_string()));
                }
            }
        }
    }
    found
}

/// fence_apc's CLI-mode parser: `^\s*(\d+): (.*): (On|Off)\s*$`, case-insensitive.
fn agent_cli_outlets(before: &str) -> Vec<(u32, String, String)> {
    let mut found = Vec::new();
    for line in before.split('\n') {
        let l = line.trim();
        let Some((num, rest)) = l.split_once(": ") else {
            continue;
        };
        let Some((alias, state)) = rest.rsplit_once(": ") else {
            continue;
        };
        if let Ok(n) = num.parse() {
            if state.eq_ignore_ascii_case("on") || state.eq_ignore_ascii_case("off") {
                found.push((n, alias.to_string(), state.to_string()));
            }
        }
    }
    found
}

/// A menu screen must end in the prompt, and `\n>` must occur nowhere else.
fn assert_one_prompt_at_end(out: &str) {
    assert!(out.ends_with("\r\n> "), "no prompt at the end: {out:?}");
    assert_eq!(out.matches("\n>").count(), 1, "stray prompt in {out:?}");
}

#[test]
fn login_prompts_are_the_ones_the_agent_waits_for() {
    let (mut s, hello) = Script::new(model(4));
    assert!(hello.ends_with(b"\r\nUser Name : "), "{hello:?}");
    assert!(hello.starts_with(&[255, 251, 1]), "WILL ECHO first");
    let out = s.send("apc\r\n");
    assert_eq!(out, "apc\r\nPassword  : ");
    let out = s.send("apc\r\n");
    assert!(
        out.starts_with("***\r\n"),
        "the password is echoed as stars: {out:?}"
    );
    assert!(out.contains("4- Logout") && out.contains("Control Console -----"));
    assert_one_prompt_at_end(&out);
    assert_eq!(agent_firmware_digit(&out), Some(Some('3')));
}

#[test]
fn v6_banner_makes_the_agent_choose_cli_mode_and_ends_in_the_apc_prompt() {
    let mut m = model(2);
    m.firmware = Firmware::CliV6;
    let (mut s, _) = Script::new(m);
    s.send("apc\r\n");
    let out = s.send("apc\r\n");
    assert_eq!(agent_firmware_digit(&out), Some(Some('6')));
    assert!(out.ends_with("\r\napc>"), "{out:?}");
    let out = s.send("olStatus all\r\n");
    let parsed = agent_cli_outlets(&out);
    assert_eq!(parsed.len(), 2, "{out:?}");
    assert_eq!(parsed[1], (2, "Outlet 2".into(), "On".into()));
    let out = s.send("olOff 2\r\n");
    assert!(out.contains("E000: Success"));
    assert_eq!(s.actions, vec![OutletAction::Off(2)]);
    s.send("exit\r\n");
    assert!(s.session.is_closed());
}

#[test]
fn wrong_credentials_return_to_user_name_and_the_third_failure_hangs_up() {
    let (mut s, _) = Script::new(model(2));
    for attempt in 1..=3 {
        s.send("apc\r\n");
        let out = s.send("nope\r\n");
        assert!(!s.session.logged_in());
        if attempt < 3 {
            assert!(out.ends_with("\r\nUser Name : "), "{out:?}");
            assert!(!out.contains("\n>"));
        } else {
            assert!(s.session.is_closed(), "hang up after 3 failures");
        }
    }
    assert_eq!(
        s.send("apc\r\napc\r\n"),
        "",
        "a closed session says nothing"
    );
    // The right password for the wrong user is refused too.
    let (mut s, _) = Script::new(model(2));
    s.send("admin\r\n");
    s.send("apc\r\n");
    assert!(!s.session.logged_in());
}

#[test]
fn empty_user_name_prompts_again_without_counting_as_a_failure() {
    let (mut s, _) = Script::new(model(2));
    for _ in 0..5 {
        assert_eq!(s.send("\r"), "\r\nUser Name : ");
    }
    s.send("apc\r");
    s.send("apc\r");
    assert!(
        s.session.logged_in(),
        "lone CR is an Enter (the agent's eol fallback)"
    );
}

#[test]
fn agent_off_sequence_turns_the_outlet_off_with_the_expected_screens() {
    let mut s = Script::logged_in(model(8));
    // The observed fence_apc `-o off -n 5` command sequence, set pass.
    let out = s.send("1\r\n");
    assert!(out.contains("Outlet Management") && !out.contains("Outlet Control/Configuration"));
    assert!(!out.to_lowercase().contains("masterswitch plus"));
    assert_one_prompt_at_end(&out);
    let out = s.send("2\r\n");
    assert!(out.contains("2- Outlet Restriction"));
    assert_one_prompt_at_end(&out);
    let out = s.send("1\r\n");
    assert_one_prompt_at_end(&out);
    assert!(!out.contains("Press <ENTER>"), "no paging configured");
    let listed = agent_outlets(&out);
    assert_eq!(listed.len(), 8, "{out}");
    assert_eq!(listed[4], (5, "Outlet 5".into(), "ON".into()));
    let out = s.send("5\r\n");
    assert!(out.contains("1- Control Outlet"));
    assert_eq!(s.session.screen(), Some(Screen::Outlet(5)));
    let out = s.send("1\r\n");
    assert!(out.contains("2- Immediate Off"));
    let out = s.send("2\r\n");
    assert!(
        out.ends_with("Enter 'YES' to continue or <ENTER> to cancel : "),
        "{out:?}"
    );
    assert!(s.actions.is_empty(), "nothing happens before YES");
    let out = s.send("YES\r\n");
    assert!(out.contains("Command successfully issued."));
    assert!(out.ends_with("Press <ENTER> to continue..."));
    assert_eq!(s.actions, vec![OutletAction::Off(5)]);
    assert_eq!(s.model.outlet(5).unwrap().power, Power::Off);
    let out = s.send("\r\n");
    assert_one_prompt_at_end(&out);
    assert!(out.contains("State        : OFF"));
    let out = s.send("\x03");
    assert!(out.contains("- Logout"));
    assert_one_prompt_at_end(&out);
    assert_eq!(s.session.screen(), Some(Screen::Console));
    // Status pass: the list now shows outlet 5 off.
    let out: String = ["1\r\n", "2\r\n", "1\r\n"]
        .iter()
        .map(|i| s.send(i))
        .collect();
    assert_eq!(agent_outlets(&out)[4].2, "OFF");
    s.send("\x03");
    s.send("4\r\n");
    assert!(s.session.is_closed());
}

fn control_outlet(s: &mut Script, n: u32) {
    for line in ["1\r\n", "2\r\n", "1\r\n"] {
        s.send(line);
    }
    s.send(&format!("{n}\r\n"));
    s.send("1\r\n");
    assert_eq!(s.session.screen(), Some(Screen::ControlOutlet(n)));
}

#[test]
fn immediate_on_and_reboot_are_reported_and_on_when_on_is_not() {
    let mut m = model(3);
    m.set_power(2, Power::Off);
    let mut s = Script::logged_in(m);
    control_outlet(&mut s, 2);
    s.send("1\r\nYES\r\n\r\n");
    assert_eq!(s.actions, vec![OutletAction::On(2)]);
    s.send("1\r\nYES\r\n\r\n");
    assert_eq!(
        s.actions,
        vec![OutletAction::On(2)],
        "already on: nothing to report"
    );
    s.send("3\r\nYES\r\n\r\n");
    assert_eq!(
        s.actions,
        vec![OutletAction::On(2), OutletAction::Reboot(2)]
    );
    assert_eq!(
        s.model.outlet(2).unwrap().power,
        Power::Off,
        "off until the server powers it on"
    );
}

#[test]
fn anything_but_yes_cancels_the_command() {
    let mut s = Script::logged_in(model(3));
    control_outlet(&mut s, 1);
    for answer in ["\r\n", "yes\r\n", "NO\r\n", "\x1b"] {
        s.send("2\r\n");
        assert!(matches!(
            s.session.screen(),
            Some(Screen::Confirm(1, Command::Off))
        ));
        let out = s.send(answer);
        assert_eq!(
            s.session.screen(),
            Some(Screen::ControlOutlet(1)),
            "{answer:?}"
        );
        assert_one_prompt_at_end(&out);
    }
    assert!(s.actions.is_empty());
    assert_eq!(s.model.outlet(1).unwrap().power, Power::On);
}

#[test]
fn esc_goes_up_one_level_at_a_time_and_ctrl_c_to_the_console() {
    let mut s = Script::logged_in(model(3));
    control_outlet(&mut s, 3);
    let path = [
        Screen::Outlet(3),
        Screen::OutletList { next: None },
        Screen::OutletManagement,
        Screen::DeviceManager,
        Screen::Console,
        Screen::Console,
    ];
    for want in path {
        let out = s.send("\x1b");
        assert_eq!(s.session.screen(), Some(want));
        assert_one_prompt_at_end(&out);
    }
    control_outlet(&mut s, 3);
    s.send("2\r\n");
    s.send_bytes(&[255, 244]); // IAC IP, a line-mode client's Ctrl-C
    assert_eq!(s.session.screen(), Some(Screen::Console));
    assert!(s.actions.is_empty());
}

#[test]
fn paged_list_starts_each_page_on_a_new_line_and_ctrl_c_leaves_a_page_break() {
    let mut m = model(20);
    m.page_size = 6;
    m.set_power(7, Power::Off);
    let mut s = Script::logged_in(m);
    s.send("1\r\n2\r\n");
    let mut text = s.send("1\r\n");
    let mut pages = 1;
    while text.ends_with("Press <ENTER> to continue...") {
        assert!(!text.contains("\n>"));
        let more = s.send("\r\n");
        assert!(
            more.starts_with("\r\n"),
            "page must start on a new line: {more:?}"
        );
        text.push_str(&more);
        pages += 1;
    }
    assert_eq!(pages, 4);
    assert!(text.ends_with("\r\n> "));
    let listed = agent_outlets(&text);
    assert_eq!(listed.len(), 20);
    assert_eq!(listed[6], (7, "Outlet 7".into(), "OFF".into()));
    // Typing at a page break is ignored, Ctrl-C leaves it.
    s.send("\r\n");
    assert_eq!(s.send("7"), "");
    let out = s.send("\x03");
    assert!(out.contains("- Logout"));
    assert_eq!(s.session.screen(), Some(Screen::Console));
}

#[test]
fn every_line_ending_is_one_enter_even_when_split_across_reads() {
    for (user_end, pass_end) in [
        ("\r\n", "\r\n"),
        ("\r\0", "\r\0"),
        ("\n", "\n"),
        ("\r", "\r"),
    ] {
        let (mut s, _) = Script::new(model(2));
        let out = s.send(&format!("apc{user_end}"));
        assert!(out.ends_with("Password  : "), "{user_end:?}: {out:?}");
        let out = s.send(&format!("apc{pass_end}"));
        assert!(s.session.logged_in(), "{pass_end:?}: {out:?}");
        // A split CR LF: the LF arrives in the next read and is not a second Enter.
        s.send("1\r");
        let out = s.send("\n");
        assert_eq!(out, "", "{user_end:?}");
        assert_eq!(s.session.screen(), Some(Screen::DeviceManager));
    }
}

#[test]
fn backspace_edits_and_long_lines_are_cut() {
    let mut s = Script::logged_in(model(2));
    let out = s.send("9\x7f1\r\n");
    assert!(out.starts_with("9\x08 \x081"), "{out:?}");
    assert_eq!(s.session.screen(), Some(Screen::DeviceManager));
    let long = "x".repeat(MAX_LINE + 50);
    let out = s.send(&long);
    assert_eq!(out.len(), MAX_LINE, "only what fits is echoed");
}

#[test]
fn outlet_numbers_the_switch_lacks_only_redraw_the_list() {
    let mut s = Script::logged_in(model(4));
    s.send("1\r\n2\r\n1\r\n");
    for bad in ["0", "5", "-1", "abc", "99999999999999999999"] {
        let out = s.send(&format!("{bad}\r\n"));
        assert_eq!(
            s.session.screen(),
            Some(Screen::OutletList { next: None }),
            "{bad}"
        );
        assert_eq!(agent_outlets(&out).len(), 4);
    }
}

#[test]
fn logout_closes_and_later_input_is_ignored() {
    let mut s = Script::logged_in(model(2));
    let out = s.send("4\r\n1\r\n");
    assert!(out.contains("Bye"));
    assert!(s.session.is_closed());
    assert_eq!(s.send("1\r\n2\r\n"), "");
}

/// Input pieces that reach deep into the dialog, mixed with arbitrary bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let tokens: Vec<&'static [u8]> = vec![
        b"apc\r\n",
        b"1\r\n",
        b"2\r\n",
        b"3\r\n",
        b"4\r\n",
        b"5\r\n",
        b"YES\r\n",
        b"\r\n",
        b"\r",
        b"\n",
        b"\r\0",
        b"\x03",
        b"\x1b",
        b"\x7f",
        b"\xff\xfd\x01",
        b"\xff\xfe\x01",
        b"\xff\xfb\x00",
        b"\xff\xfa\x18",
        b"\xff\xf0",
        b"\xff\xf4",
        b"\xff\xff",
        b"\xff",
        b"1\r\nYES\r\n",
        b"2\r\nYES\r\n\r\n",
        b"3\r\nYES\r\n",
        b"1\r\n2\r\n1\r\n",
        b"olOff 1\r\n",
        b"olReboot all\r\n",
        b"olOn 1-3\r\n",
        b"olStatus\r\n",
    ];
    prop_oneof![
        4 => proptest::sample::select(tokens).prop_map(|t| t.to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

/// Where a random session starts: at `User Name :`, logged in, or (menus) at Control
/// Outlet of some outlet, so that random input also exercises the outlet commands.
fn start() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"apc\r\napc\r\n".to_vec()),
        (1u32..=6).prop_map(|n| format!("apc\r\napc\r\n1\r\n2\r\n1\r\n{n}\r\n1\r\n").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_input_never_panics_and_changes_only_what_it_reports(
        start in start(),
        pieces in proptest::collection::vec(piece(), 0..40),
        cli in any::<bool>(),
        page_size in 0usize..4,
    ) {
        let mut m = model(5);
        m.page_size = page_size;
        if cli {
            m.firmware = Firmware::CliV6;
        }
        let mut replay = m.clone();
        let (mut s, _) = Script::new(m);
        s.send_bytes(&start);
        let mut logged_in = s.session.logged_in();
        for p in &pieces {
            let out = s.send_bytes(p);
            if !cli {
                // Every `\n>` the agent could see is a real prompt.
                prop_assert_eq!(out.matches("\n>").count(), out.matches("\n> ").count());
            }
            if logged_in {
                prop_assert!(!out.contains("User Name :"), "login prompt after login: {:?}", out);
            }
            logged_in |= s.session.logged_in();
        }
        for a in &s.actions {
            match *a {
                OutletAction::On(n) => prop_assert!(replay.set_power(n, Power::On)),
                OutletAction::Off(n) => prop_assert!(replay.set_power(n, Power::Off)),
                OutletAction::Reboot(n) => { replay.set_power(n, Power::Off); }
            }
        }
        prop_assert_eq!(&replay, &s.model);
    }
}
