//! `clustat`: its command line and its text layouts (spec/rgmanager.md §5.2).
//!
//! ```text
//!  Cluster Status for dom0cluster1 @ Tue Nov 25 16:02:00 2008     (no -s / -m)
//!  Member Status: Quorate
//!                                                                  blank
//!   Member Name<pad to cols/2>ID   Status                          member table
//!   ------ ----<pad>          ---- ------
//!   station200<pad>             1 Online, Local, rgmanager
//!                                                                  blank
//!   Service Name<pad> Owner (Last)<pad> State<pad>                 service table
//!   ------- ----      ----- ------      -----                       (rgmanagerd answered)
//!   vm:guest1         station200        started
//! ```
//!
//! Widths follow the terminal: the member name column is `cols / 2`, the service and owner
//! columns `(cols - 20) / 2`, all capped at 64; without a tty `cols` is 80. Every field is
//! left-justified, padded and cut to its width, so rows carry trailing blanks as the
//! original's did. The text is built here from values; the binary supplies the terminal,
//! the clock and the local time zone.

use super::ctime::ctime;
use super::getopt::{atoi, getopt, Opt};
use libcluster::ipc::rgmanager::{resolve_service, RgMember, RgService, RgStatus};
use libcluster::rgmanager::ServiceState;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The original's `MAXHOSTNAMELEN` cap on every name column.
pub const MAX_NAME_WIDTH: usize = 64;
/// The State column.
pub const STATE_WIDTH: usize = 14;
/// Columns assumed when stdout is not a terminal.
pub const DEFAULT_COLUMNS: usize = 80;

/// What `clustat` will do once it has parsed its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The report (text, long, XML or JSON), possibly refreshed.
    Report,
    /// `-Q`: exit 0 if quorate, 1 if not; no output.
    Quorum,
    /// `-v`: the version line.
    Version,
    /// `-I`: the local node id as `0x%08x`.
    NodeId,
}

/// `clustat`'s parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClustatArgs {
    /// The last of `-v`, `-I`, `-Q`, else the report.
    pub mode: Mode,
    /// `-i SEC` (values below 1 become 1).
    pub interval_s: Option<u64>,
    /// `-m MEMBER`.
    pub member: Option<String>,
    /// `-s SERVICE` as typed.
    pub service: Option<String>,
    /// `-l`.
    pub long: bool,
    /// `-x`.
    pub xml: bool,
    /// `--json` (ours).
    pub json: bool,
    /// `-f` (accepted; every read is fast here).
    pub fast: bool,
    /// `--runtime-dir DIR`.
    pub runtime_dir: Option<PathBuf>,
}

/// The result of parsing: run, or stop now with this output and exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// Go on.
    Run(T),
    /// Print these and exit.
    Exit {
        /// For stdout.
        stdout: String,
        /// For stderr.
        stderr: String,
        /// Exit status.
        code: u8,
    },
}

/// `clustat`'s usage text (printed for `-h`, `-?` and unknown options, exit 0).
pub fn usage() -> String {
    [
        "usage: clustat <options>",
        "    -i <interval>      Refresh every <interval> seconds.  May not be used",
        "                       with -x.",
        "    -I                 Display local node ID and exit",
        "    -m <member>        Display status of <member> and exit",
        "    -s <service>       Display status of <service> and exit",
        "    -v                 Display version and exit",
        "    -x                 Dump information as XML",
        "    -Q                 Return 0 if quorate, 1 if not (no output)",
        "    -f                 Enable fast clustat reports",
        "    -l                 Use long format for services",
        "    --json             Dump information as JSON",
        "    --runtime-dir DIR  Where the daemons' sockets are",
        "",
        "",
    ]
    .join("\n")
}

/// Parses `clustat`'s arguments (without the program name) with the original's getopt
/// string `fIls:m:i:xvQh?`.
pub fn parse_args(args: &[String]) -> Parsed<ClustatArgs> {
    let mut a = ClustatArgs {
        mode: Mode::Report,
        interval_s: None,
        member: None,
        service: None,
        long: false,
        xml: false,
        json: false,
        fast: false,
        runtime_dir: None,
    };
    let long = [("json", false), ("runtime-dir", true), ("help", false)];
    for opt in getopt(args, "fIls:m:i:xvQh?", &long) {
        if let Some(message) = opt.error_message("clustat") {
            // getopt answers '?', which the original treats like -h.
            return Parsed::Exit {
                stdout: usage(),
                stderr: format!("{message}\n"),
                code: 0,
            };
        }
        match opt {
            Opt::Short('v', _) => a.mode = Mode::Version,
            Opt::Short('I', _) => a.mode = Mode::NodeId,
            Opt::Short('Q', _) => a.mode = Mode::Quorum,
            Opt::Short('i', Some(v)) => a.interval_s = Some(atoi(&v).max(1) as u64),
            Opt::Short('l', _) => a.long = true,
            Opt::Short('m', v) => a.member = v,
            Opt::Short('s', v) => a.service = v,
            Opt::Short('x', _) => a.xml = true,
            Opt::Short('f', _) => a.fast = true,
            Opt::Long(name, v) if name == "runtime-dir" => a.runtime_dir = v.map(PathBuf::from),
            Opt::Long(name, _) if name == "json" => a.json = true,
            _ => {
                return Parsed::Exit {
                    stdout: usage(),
                    stderr: String::new(),
                    code: 0,
                }
            }
        }
    }
    if a.interval_s.is_some() && (a.xml || a.json) && a.mode == Mode::Report {
        return Parsed::Exit {
            stdout: "Error: Options '-i' and '-x' are mutually exclusive\n".into(),
            stderr: String::new(),
            code: 1,
        };
    }
    Parsed::Run(a)
}

/// Everything variable in a report.
#[derive(Clone, Debug)]
pub struct RenderOpts {
    /// Now, for the `Cluster Status for NAME @ DATE` line.
    pub now_unix_s: i64,
    /// The local offset from UTC at a given instant.
    pub utc_offset_s: fn(i64) -> i32,
    /// Terminal width ([`DEFAULT_COLUMNS`] when stdout is not a tty).
    pub columns: usize,
    /// Whether stdout is a terminal: then `service:` prefixes are dropped.
    pub is_tty: bool,
    /// `-l`.
    pub long: bool,
    /// `-m MEMBER`.
    pub member: Option<String>,
    /// `-s SERVICE` as typed.
    pub service: Option<String>,
    /// Whether rgmanagerd answered: without it there is no service table and no member
    /// carries the rgmanager flag.
    pub rgmanager: bool,
}

impl RenderOpts {
    /// Plain defaults: not a tty, 80 columns, UTC, no filters, rgmanagerd answering.
    pub fn new(now_unix_s: i64) -> RenderOpts {
        RenderOpts {
            now_unix_s,
            utc_offset_s: super::ctime::utc,
            columns: DEFAULT_COLUMNS,
            is_tty: false,
            long: false,
            member: None,
            service: None,
            rgmanager: true,
        }
    }
}

/// A rendered report and the exit status that goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// For stdout.
    pub text: String,
    /// Exit status.
    pub exit: u8,
}

/// The members in the order clustat lists them: nodes by id, the quorum device last
/// (it was appended after cluster.conf's nodes).
pub fn member_order(status: &RgStatus) -> Vec<&RgMember> {
    let mut v: Vec<&RgMember> = status.members.iter().collect();
    v.sort_by_key(|m| (m.qdisk, m.id));
    v
}

/// Whether a member is listed: estranged members only while online.
pub fn visible(m: &RgMember) -> bool {
    m.online || !m.estranged
}

/// The name a node id shows as: `none` for 0, `unknown` if no member has it.
pub fn member_name(status: &RgStatus, id: Option<u32>) -> &str {
    match id {
        None | Some(0) => "none",
        Some(id) => status.member(id).map_or("unknown", |m| m.name.as_str()),
    }
}

/// The status words of a member row: `Online, Local, rgmanager, Quorum Disk`.
///
/// One style for the rgmanager flag: `rgmanager`, as RHEL 5 printed it (the reference
/// deployment's output); RG-Master/RG-Worker are in the XML's `rgmanager_master`.
pub fn member_words(m: &RgMember, rgmanager: bool) -> String {
    let mut s = String::from(if m.online { "Online" } else { "Offline" });
    if m.local {
        s.push_str(", Local");
    }
    if m.estranged {
        s.push_str(", Estranged");
    }
    if m.rgmanager && rgmanager {
        s.push_str(", rgmanager");
    }
    if m.qdisk {
        s.push_str(", Quorum Disk");
    }
    s
}

/// `%-W.Ws`: left-justified, padded and cut to `w` characters.
pub fn field(s: &str, w: usize) -> String {
    let cut: String = s.chars().take(w).collect();
    format!("{cut:<w$}")
}

/// The member name column: `cols / 2`, at most 64.
pub fn member_width(columns: usize) -> usize {
    (columns / 2).min(MAX_NAME_WIDTH)
}

/// The service and owner columns: `(cols - 20) / 2`, at most 64.
pub fn service_width(columns: usize) -> usize {
    (columns.saturating_sub(STATE_WIDTH + 6) / 2).min(MAX_NAME_WIDTH)
}

/// The full name `-s WORD` means: a configured name as given, then with `service:`, then
/// with `vm:`; else `service:WORD` like the original (which matches nothing).
pub fn service_target(status: &RgStatus, word: &str) -> String {
    resolve_service(word, status.services.iter().map(|s| s.name.as_str())).unwrap_or_else(|| {
        if word.contains(':') {
            word.to_string()
        } else {
            format!("service:{word}")
        }
    })
}

/// The exit status for `-s`: 0 while starting, started or stopping, else the state code.
pub fn service_exit(state: ServiceState) -> u8 {
    match state {
        ServiceState::Starting | ServiceState::Started | ServiceState::Stopping => 0,
        // 110..=120 fit a byte.
        other => u8::try_from(other.code()).unwrap_or(255),
    }
}

/// The exit status for `-Q`.
pub fn quorum_exit(quorate: bool) -> u8 {
    u8::from(!quorate)
}

/// The exit rules of `-m` and `-s` together: the member's if it is not 0, else the
/// service's; 255 for a name nobody has.
pub fn exit_status(status: &RgStatus, opts: &RenderOpts) -> u8 {
    let member = opts.member.as_deref().map(|name| {
        status
            .members
            .iter()
            .find(|m| m.name == name)
            .map_or(255, |m| u8::from(!m.online))
    });
    let service = opts.service.as_deref().map(|word| {
        let name = service_target(status, word);
        match status.service(&name) {
            Some(s) if opts.rgmanager => service_exit(s.record.state),
            _ => 255,
        }
    });
    match (member, service) {
        (Some(m), _) if m != 0 => m,
        (_, Some(s)) => s,
        _ => 0,
    }
}

/// The default (and `-l`) text report.
pub fn text(status: &RgStatus, opts: &RenderOpts) -> Report {
    let mut out = String::new();
    let (member, service) = (opts.member.as_deref(), opts.service.as_deref());
    if member.is_none() && service.is_none() {
        let now = ctime(opts.now_unix_s, (opts.utc_offset_s)(opts.now_unix_s));
        let _ = writeln!(out, "Cluster Status for {} @ {now}", status.cluster_name);
        let q = if status.quorate {
            "Quorate"
        } else {
            "Inquorate"
        };
        let _ = writeln!(out, "Member Status: {q}\n");
    }
    if service.is_none() || member.is_some() {
        members(&mut out, status, opts);
    }
    if opts.rgmanager && (member.is_none() || service.is_some()) {
        services(&mut out, status, opts);
    }
    Report {
        text: out,
        exit: exit_status(status, opts),
    }
}

fn member_header(out: &mut String, w: usize) {
    let _ = writeln!(out, " {}{:<4.4} Status", field("Member Name", w), "ID");
    let _ = writeln!(out, " {}---- ------", field("------ ----", w));
}

fn members(out: &mut String, status: &RgStatus, opts: &RenderOpts) {
    let w = member_width(opts.columns);
    let only = opts.member.as_deref();
    if only.is_none() {
        member_header(out, w);
    }
    for m in member_order(status) {
        if only.is_some_and(|name| name != m.name) {
            continue;
        }
        if only.is_some() {
            member_header(out, w);
        }
        if visible(m) {
            let words = member_words(m, opts.rgmanager);
            let _ = writeln!(out, " {} {:4} {words}", field(&m.name, w), m.id);
        }
        if only.is_some() {
            return;
        }
    }
    if only.is_none() {
        out.push('\n');
    }
}

fn service_header(out: &mut String, w: usize) {
    let s = STATE_WIDTH;
    let _ = writeln!(
        out,
        " {} {} {}",
        field("Service Name", w),
        field("Owner (Last)", w),
        field("State", s)
    );
    let _ = writeln!(
        out,
        " {} {} {}",
        field("------- ----", w),
        field("----- ------", w),
        field("-----", s)
    );
}

fn services(out: &mut String, status: &RgStatus, opts: &RenderOpts) {
    let w = service_width(opts.columns);
    let only = opts.service.as_deref().map(|s| service_target(status, s));
    if opts.long {
        out.push_str("Service Information\n------- -----------\n\n");
    } else if only.is_none() {
        service_header(out, w);
    }
    let mut sorted: Vec<&RgService> = status.services.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for svc in sorted {
        if only.as_deref().is_some_and(|n| n != svc.name) {
            continue;
        }
        if opts.long {
            long_entry(out, status, svc, opts);
            continue;
        }
        if only.is_some() {
            service_header(out, w);
        }
        short_row(out, status, svc, w, opts.is_tty);
    }
}

/// One row of the short service table.
fn short_row(out: &mut String, status: &RgStatus, svc: &RgService, w: usize, is_tty: bool) {
    let r = &svc.record;
    let name = match svc.name.strip_prefix("service:") {
        Some(bare) if is_tty => bare,
        _ => svc.name.as_str(),
    };
    let owner = if r.state.shows_last_owner() {
        let last = member_name(status, r.last_owner.map(|n| n.0));
        let cut: String = last.chars().take(w.saturating_sub(2)).collect();
        format!("({cut})")
    } else {
        field(member_name(status, r.owner.map(|n| n.0)), w)
    };
    let short = r.flags.short();
    let state = if r.flags.0 != 0 {
        let room = STATE_WIDTH.saturating_sub(2 + short.len());
        format!("{}[{short}]", field(r.state.as_str(), room))
    } else {
        r.state.as_str().to_string()
    };
    let _ = writeln!(
        out,
        " {} {} {}",
        field(name, w),
        field(&owner, w),
        field(&state, STATE_WIDTH)
    );
}

/// One entry of `clustat -l`.
fn long_entry(out: &mut String, status: &RgStatus, svc: &RgService, opts: &RenderOpts) {
    let r = &svc.record;
    let _ = writeln!(out, "Service Name      : {}", svc.name);
    let _ = writeln!(
        out,
        "  Current State   : {} ({})",
        r.state.as_str(),
        r.state.code()
    );
    if r.flags.0 != 0 {
        let words = r.flags.long().replace(',', ", ");
        let _ = writeln!(out, "  Flags           : {words} ({})", r.flags.0);
    } else {
        let _ = writeln!(out, "  Flags           : none (0)");
    }
    let owner = member_name(status, r.owner.map(|n| n.0));
    let _ = writeln!(out, "  Owner           : {owner}");
    let last = member_name(status, r.last_owner.map(|n| n.0));
    let _ = writeln!(out, "  Last Owner      : {last}");
    let t = svc.last_transition_unix_s.unwrap_or(0);
    // ctime's own newline makes the blank line between entries.
    let _ = writeln!(
        out,
        "  Last Transition : {}\n",
        ctime(t, (opts.utc_offset_s)(t))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> ClustatArgs {
        match parse_args(&words(s)) {
            Parsed::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_last_of_v_i_and_q_decides_the_mode() {
        assert_eq!(run("-v -Q").mode, Mode::Quorum);
        assert_eq!(run("-Q -I").mode, Mode::NodeId);
        assert_eq!(run("-I -v").mode, Mode::Version);
        assert_eq!(run("-l").mode, Mode::Report);
    }

    #[test]
    fn intervals_below_one_become_one() {
        assert_eq!(run("-i 0").interval_s, Some(1));
        assert_eq!(run("-i -5").interval_s, Some(1));
        assert_eq!(run("-i abc").interval_s, Some(1));
        assert_eq!(run("-i3").interval_s, Some(3));
    }

    #[test]
    fn help_and_unknown_options_print_usage_and_exit_zero() {
        for args in ["-h", "-?", "-z", "-s", "--bogus"] {
            match parse_args(&words(args)) {
                Parsed::Exit { stdout, code, .. } => {
                    assert_eq!(code, 0, "{args}");
                    assert!(stdout.starts_with("usage: clustat <options>"), "{args}");
                }
                other => panic!("{args}: {other:?}"),
            }
        }
    }

    #[test]
    fn interval_and_xml_are_mutually_exclusive() {
        for args in ["-i 2 -x", "-x -i 2"] {
            assert_eq!(
                parse_args(&words(args)),
                Parsed::Exit {
                    stdout: "Error: Options '-i' and '-x' are mutually exclusive\n".into(),
                    stderr: String::new(),
                    code: 1
                }
            );
        }
    }

    #[test]
    fn widths_follow_the_terminal_and_cap_at_64() {
        assert_eq!((member_width(80), service_width(80)), (40, 30));
        assert_eq!((member_width(100), service_width(100)), (50, 40));
        assert_eq!((member_width(300), service_width(300)), (64, 64));
        assert_eq!((member_width(10), service_width(10)), (5, 0));
    }

    #[test]
    fn fields_pad_and_cut_like_printf_precision() {
        assert_eq!(field("abc", 5), "abc  ");
        assert_eq!(field("abcdef", 3), "abc");
        assert_eq!(field("", 0), "");
    }

    #[test]
    fn service_exit_is_zero_only_while_running() {
        for st in [
            ServiceState::Starting,
            ServiceState::Started,
            ServiceState::Stopping,
        ] {
            assert_eq!(service_exit(st), 0);
        }
        assert_eq!(service_exit(ServiceState::Stopped), 110);
        assert_eq!(service_exit(ServiceState::Failed), 114);
        assert_eq!(service_exit(ServiceState::Disabled), 119);
        assert_eq!(service_exit(ServiceState::Migrating), 120);
        assert_eq!(quorum_exit(true), 0);
        assert_eq!(quorum_exit(false), 1);
    }
}
