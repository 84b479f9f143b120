//! Action timeouts and status schedules (spec/rgmanager.md §3.1).
//!
//! ```text
//!   defaults by type ──► <action> overrides ──► Actions ──► StatusSchedule (last runs, last result)
//!                                                               │ due(now): among the status actions whose
//!                                                               │ interval has passed, the deepest
//!                                                               ▼
//!                                           run it (OCF_CHECK_LEVEL=depth), or reuse the last result
//! ```
//!
//! rgmanager took the table from each agent's metadata; we do not run `meta-data`, so the
//! defaults of the agents the spec lists are built in and any other type gets
//! [`FALLBACK_STATUS`].

use std::time::{Duration, Instant};

use libcluster::config::defaults::parse_time_s;

/// One `status` action: run at `depth` every `interval` (0 = never), bounded by `timeout`
/// (0 = no action timeout; only the safety bound applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusAction {
    /// `OCF_CHECK_LEVEL`.
    pub depth: u32,
    /// How often.
    pub interval: Duration,
    /// The action timeout.
    pub timeout: Duration,
}

/// The actions of one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actions {
    /// `start` timeout (0 = none).
    pub start_timeout: Duration,
    /// `stop` timeout (0 = none).
    pub stop_timeout: Duration,
    /// `status` actions, sorted by depth, one per depth.
    pub status: Vec<StatusAction>,
}

/// For types the spec's table does not list: one shallow check a minute.
pub const FALLBACK_STATUS: StatusAction = StatusAction {
    depth: 0,
    interval: Duration::from_secs(60),
    timeout: Duration::ZERO,
};

const fn st(depth: u32, interval_s: u64, timeout_s: u64) -> StatusAction {
    StatusAction {
        depth,
        interval: Duration::from_secs(interval_s),
        timeout: Duration::from_secs(timeout_s),
    }
}

/// The default table (spec/rgmanager.md §3.1): status actions, start and stop timeouts.
fn table(kind: &str) -> (&'static [StatusAction], u64, u64) {
    const SERVICE: &[StatusAction] = &[];
    const VM: &[StatusAction] = &[st(0, 30, 10), st(10, 60, 20)];
    const IP: &[StatusAction] = &[st(0, 20, 10), st(10, 60, 20)];
    const FS: &[StatusAction] = &[st(0, 60, 10), st(10, 30, 30), st(20, 60, 30)];
    const NETWORK_FS: &[StatusAction] = &[st(0, 60, 0), st(10, 300, 0), st(20, 600, 0)];
    const SCRIPT: &[StatusAction] = &[st(0, 30, 0)];
    const HOURLY: &[StatusAction] = &[st(0, 3600, 0)];
    const MINUTELY: &[StatusAction] = &[st(0, 60, 0)];
    const APPS: &[StatusAction] = &[st(0, 60, 0), st(10, 300, 0)];
    const FALLBACK: &[StatusAction] = &[FALLBACK_STATUS];
    match kind {
        "service" => (SERVICE, 5, 5),
        "vm" => (VM, 300, 120),
        "ip" => (IP, 20, 20),
        "fs" => (FS, 900, 30),
        "clusterfs" | "netfs" => (NETWORK_FS, 900, 30),
        "script" => (SCRIPT, 0, 0),
        "lvm" | "nfsexport" => (HOURLY, 5, 5),
        "nfsclient" => (MINUTELY, 90, 5),
        "apache" | "mysql" | "postgres-8" => (APPS, 0, 0),
        _ => (FALLBACK, 0, 0),
    }
}

/// Why an `<action>` override was refused: the attribute, its value and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadOverride {
    /// The attribute (`name`, `depth`, `interval`, `timeout`).
    pub attr: &'static str,
    /// Its value.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

const TIME_HINT: &str = "not a time such as 30, 5m or 1h30m";

impl Actions {
    /// The built-in defaults for a resource type.
    pub fn defaults(kind: &str) -> Actions {
        let (status, start_s, stop_s) = table(kind);
        Actions {
            start_timeout: Duration::from_secs(start_s),
            stop_timeout: Duration::from_secs(stop_s),
            status: status.to_vec(),
        }
    }

    /// Applies one `<action name= depth= interval= timeout=/>` override. `depth="*"` changes
    /// every status depth; a new depth adds an action; a negative interval becomes 0, which
    /// disables that depth. Actions other than start, stop and status are accepted and
    /// ignored (rgmanager never runs monitor, recover or migrate for a service).
    pub fn apply_override(&mut self, attrs: &[(String, String)]) -> Result<(), BadOverride> {
        let get = |name: &str| attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let Some(name) = get("name") else {
            return Err(BadOverride {
                attr: "name",
                value: String::new(),
                reason: "an <action> needs a name (start, stop or status)",
            });
        };
        let timeout = match get("timeout") {
            Some(v) => Some(parse_time(v).ok_or_else(|| bad("timeout", v, TIME_HINT))?),
            None => None,
        };
        match name.as_str() {
            "start" => self.start_timeout = timeout.unwrap_or(self.start_timeout),
            "stop" => self.stop_timeout = timeout.unwrap_or(self.stop_timeout),
            "status" => {
                let interval = match get("interval") {
                    Some(v) => {
                        Some(parse_interval(v).ok_or_else(|| bad("interval", v, TIME_HINT))?)
                    }
                    None => None,
                };
                let depth = match get("depth").map(|d| d.trim()) {
                    None => Some(0),
                    Some("*") => None,
                    Some(d) => Some(d.parse::<u32>().map_err(|_| {
                        bad(
                            "depth",
                            d,
                            "not a check depth (a number such as 0, 10 or 20, or *)",
                        )
                    })?),
                };
                self.override_status(depth, interval, timeout);
            }
            _ => {}
        }
        Ok(())
    }

    fn override_status(
        &mut self,
        depth: Option<u32>,
        interval: Option<Duration>,
        timeout: Option<Duration>,
    ) {
        let change = |a: &mut StatusAction| {
            a.interval = interval.unwrap_or(a.interval);
            a.timeout = timeout.unwrap_or(a.timeout);
        };
        match depth {
            None => self.status.iter_mut().for_each(change),
            Some(d) => match self.status.iter_mut().find(|a| a.depth == d) {
                Some(a) => change(a),
                None => {
                    self.status.push(StatusAction {
                        depth: d,
                        interval: interval.unwrap_or(FALLBACK_STATUS.interval),
                        timeout: timeout.unwrap_or(Duration::ZERO),
                    });
                    self.status.sort_by_key(|a| a.depth);
                }
            },
        }
    }
}

fn bad(attr: &'static str, value: &str, reason: &'static str) -> BadOverride {
    BadOverride {
        attr,
        value: value.to_string(),
        reason,
    }
}

/// rgmanager's time syntax (`30`, `5m`, `1h30m`; libcluster's parser) as a duration.
pub fn parse_time(text: &str) -> Option<Duration> {
    parse_time_s(text).map(Duration::from_secs)
}

/// An override interval: the time syntax, where a negative value means 0 (disabled), as
/// rgmanager clamped it.
pub fn parse_interval(text: &str) -> Option<Duration> {
    match text.trim().strip_prefix('-') {
        Some(rest) => parse_time(rest).map(|_| Duration::ZERO),
        None => parse_time(text),
    }
}

/// How long an agent run may take, and the `OCF_RESKEY_RGMANAGER_meta_timeout` it is told.
/// With `__enforce_timeouts` and a non-zero action timeout the agent is killed at the action
/// timeout and told 0 (rgmanager's convention: the agent picks its own default). Otherwise
/// it is told the action timeout and bounded by the safety rule of [`super::DEFAULT_SAFETY_TIMEOUT`].
pub fn run_limit(timeout: Duration, enforce: bool, safety: Duration) -> (Duration, u64, bool) {
    if enforce && !timeout.is_zero() {
        (timeout, 0, true)
    } else {
        (
            safety.max(timeout.saturating_mul(2)),
            timeout.as_secs(),
            false,
        )
    }
}

/// When each status action of one resource last ran, and the last result.
#[derive(Clone, Debug)]
pub struct StatusSchedule {
    actions: Vec<StatusAction>,
    last_run: Vec<Option<Instant>>,
    last: Option<LastCheck>,
}

/// The last status result of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastCheck {
    /// The depth that ran.
    pub depth: u32,
    /// `None` when it passed, else the failure in words (sticky until the next run).
    pub failure: Option<String>,
}

impl StatusSchedule {
    /// A schedule that has never run: every action with an interval is due.
    pub fn new(actions: &[StatusAction]) -> StatusSchedule {
        StatusSchedule {
            actions: actions.to_vec(),
            last_run: vec![None; actions.len()],
            last: None,
        }
    }

    /// The resource (re)started at `at`: every action counts from then, results are forgotten.
    pub fn reset(&mut self, at: Instant) {
        self.last_run.iter_mut().for_each(|t| *t = Some(at));
        self.last = None;
    }

    /// The action to run at `now`: among those with a non-zero interval that has passed since
    /// their last run (or that never ran), the deepest. `None`: reuse [`Self::last`].
    pub fn due(&self, now: Instant) -> Option<StatusAction> {
        self.actions
            .iter()
            .zip(&self.last_run)
            .filter(|(a, last)| {
                !a.interval.is_zero()
                    && last.is_none_or(|t| now.saturating_duration_since(t) >= a.interval)
            })
            .map(|(a, _)| *a)
            .max_by_key(|a| a.depth)
    }

    /// `action` ran at `at` with this result. Only that action's clock restarts (as in
    /// rgmanager: a deep check does not postpone the shallow ones).
    pub fn ran(&mut self, action: StatusAction, at: Instant, failure: Option<String>) {
        if let Some(i) = self.actions.iter().position(|a| *a == action) {
            self.last_run[i] = Some(at);
        }
        self.last = Some(LastCheck {
            depth: action.depth,
            failure,
        });
    }

    /// The last result, if any check ran since the last reset.
    pub fn last(&self) -> Option<&LastCheck> {
        self.last.as_ref()
    }

    /// The check a probe runs: the shallowest action, or a depth-0 check without a timeout
    /// when the type has none.
    pub fn shallowest(&self) -> StatusAction {
        self.actions
            .iter()
            .min_by_key(|a| a.depth)
            .copied()
            .unwrap_or(StatusAction {
                depth: 0,
                interval: Duration::ZERO,
                timeout: Duration::ZERO,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_spec_table() {
        let fs = Actions::defaults("fs");
        assert_eq!((fs.start_timeout, fs.stop_timeout), (s(900), s(30)));
        assert_eq!(
            fs.status,
            [
                StatusAction {
                    depth: 0,
                    interval: s(60),
                    timeout: s(10)
                },
                StatusAction {
                    depth: 10,
                    interval: s(30),
                    timeout: s(30)
                },
                StatusAction {
                    depth: 20,
                    interval: s(60),
                    timeout: s(30)
                },
            ]
        );
        assert_eq!(Actions::defaults("ip").status[0].interval, s(20));
        assert_eq!(Actions::defaults("script").status, [st(0, 30, 0)]);
        assert_eq!(Actions::defaults("nfsexport").status, [st(0, 3600, 0)]);
        assert_eq!(Actions::defaults("nfsclient").start_timeout, s(90));
        assert!(Actions::defaults("service").status.is_empty());
        assert_eq!(Actions::defaults("frobnicator").status, [FALLBACK_STATUS]);
    }

    #[test]
    fn overrides_change_one_depth_all_depths_or_add_one() {
        let mut a = Actions::defaults("fs");
        a.apply_override(&attrs(&[
            ("name", "status"),
            ("depth", "10"),
            ("interval", "1h30m"),
        ]))
        .unwrap();
        assert_eq!(a.status[1].interval, s(5400));
        assert_eq!(a.status[1].timeout, s(30), "timeout untouched");
        a.apply_override(&attrs(&[
            ("name", "status"),
            ("depth", "*"),
            ("timeout", "2m"),
        ]))
        .unwrap();
        assert!(a.status.iter().all(|x| x.timeout == s(120)));
        a.apply_override(&attrs(&[
            ("name", "status"),
            ("depth", "5"),
            ("interval", "7"),
        ]))
        .unwrap();
        assert_eq!(
            a.status.iter().map(|x| x.depth).collect::<Vec<_>>(),
            [0, 5, 10, 20]
        );
        a.apply_override(&attrs(&[("name", "status"), ("interval", "-1")]))
            .unwrap();
        assert_eq!(
            a.status[0].interval,
            Duration::ZERO,
            "negative disables depth 0"
        );
        a.apply_override(&attrs(&[("name", "start"), ("timeout", "10m")]))
            .unwrap();
        assert_eq!(a.start_timeout, s(600));
        a.apply_override(&attrs(&[("name", "monitor"), ("interval", "1")]))
            .unwrap();
    }

    #[test]
    fn bad_overrides_name_the_attribute() {
        let mut a = Actions::defaults("ip");
        let e = a
            .apply_override(&attrs(&[("name", "status"), ("interval", "5x")]))
            .unwrap_err();
        assert_eq!((e.attr, e.value.as_str()), ("interval", "5x"));
        let e = a
            .apply_override(&attrs(&[("name", "status"), ("depth", "deep")]))
            .unwrap_err();
        assert_eq!(e.attr, "depth");
        let e = a.apply_override(&attrs(&[("interval", "5")])).unwrap_err();
        assert_eq!(e.attr, "name");
        let e = a
            .apply_override(&attrs(&[("name", "stop"), ("timeout", "")]))
            .unwrap_err();
        assert_eq!(e.attr, "timeout");
        assert_eq!(
            a,
            Actions::defaults("ip"),
            "a refused override changes nothing"
        );
    }

    #[test]
    fn time_syntax_sums_units_and_negative_intervals_disable() {
        assert_eq!(parse_time("1h30m"), Some(s(5400)));
        assert_eq!(parse_time("45"), Some(s(45)));
        assert_eq!(parse_time("2m10s"), Some(s(130)));
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_interval("-5m"), Some(Duration::ZERO));
        assert_eq!(parse_interval("-x"), None);
        assert_eq!(parse_interval("10"), Some(s(10)));
    }

    #[test]
    fn the_deepest_due_check_runs_and_only_its_clock_restarts() {
        let t0 = Instant::now();
        let mut sc = StatusSchedule::new(&Actions::defaults("fs").status);
        // Never ran: all due, the deepest wins.
        assert_eq!(sc.due(t0).map(|a| a.depth), Some(20));
        sc.reset(t0);
        assert_eq!(sc.due(t0 + s(29)), None);
        let a = sc.due(t0 + s(30)).unwrap();
        assert_eq!(a.depth, 10);
        sc.ran(a, t0 + s(30), None);
        assert_eq!(sc.due(t0 + s(59)), None);
        // At 60 s depth 0 and 20 are due (depth 10 ran at 30 s): 20 runs ...
        let a = sc.due(t0 + s(60)).unwrap();
        assert_eq!(a.depth, 20);
        sc.ran(a, t0 + s(60), Some("not writable".into()));
        // Depth 10 (30 s since it ran) and depth 0 are still due: the deep check did not
        // count for them.
        let a = sc.due(t0 + s(60)).unwrap();
        assert_eq!(a.depth, 10);
        sc.ran(a, t0 + s(60), Some("not writable".into()));
        assert_eq!(sc.due(t0 + s(60)).map(|a| a.depth), Some(0));
        assert_eq!(
            sc.last(),
            Some(&LastCheck {
                depth: 10,
                failure: Some("not writable".into())
            })
        );
        sc.reset(t0 + s(100));
        assert_eq!(sc.last(), None, "a restart forgets the sticky failure");
    }

    #[test]
    fn a_zero_interval_never_runs_and_probes_use_the_shallowest_check() {
        let mut acts = Actions::defaults("ip");
        acts.apply_override(&attrs(&[
            ("name", "status"),
            ("depth", "*"),
            ("interval", "0"),
        ]))
        .unwrap();
        let sc = StatusSchedule::new(&acts.status);
        assert_eq!(sc.due(Instant::now() + s(1_000_000)), None);
        assert_eq!(sc.shallowest().timeout, s(10));
        assert_eq!(StatusSchedule::new(&[]).shallowest().depth, 0);
    }

    #[test]
    fn enforced_timeouts_kill_at_the_action_timeout_and_pass_zero() {
        let safety = s(600);
        assert_eq!(run_limit(s(20), true, safety), (s(20), 0, true));
        assert_eq!(run_limit(s(20), false, safety), (s(600), 20, false));
        assert_eq!(run_limit(s(900), false, safety), (s(1800), 900, false));
        // A zero timeout (script) is never enforced.
        assert_eq!(run_limit(Duration::ZERO, true, safety), (s(600), 0, false));
    }

    proptest! {
        #[test]
        fn time_parsers_never_panic(text in ".{0,40}") {
            let _ = parse_time(&text);
            let _ = parse_interval(&text);
        }

        #[test]
        fn overrides_never_panic(
            name in prop::sample::select(vec!["status", "start", "stop", "monitor", ""]),
            depth in "[-*0-9a-z]{0,6}",
            interval in "[-0-9smhdwy ]{0,12}",
            timeout in "[-0-9smhdwy]{0,12}",
        ) {
            let mut a = Actions::defaults("fs");
            let _ = a.apply_override(&attrs(&[
                ("name", name), ("depth", &depth), ("interval", &interval), ("timeout", &timeout),
            ]));
            prop_assert!(a.status.windows(2).all(|w| w[0].depth < w[1].depth));
        }

        #[test]
        fn unit_terms_add_up(h in 0u64..1000, m in 0u64..1000, sec in 0u64..1000) {
            prop_assert_eq!(parse_time(&format!("{h}h{m}m{sec}s")), Some(s(h * 3600 + m * 60 + sec)));
        }
    }
}
