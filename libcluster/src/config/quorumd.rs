//! `<quorumd>` and its `<heuristic>` children, with qdiskd's derived timings
//! (spec/cman-qdisk.md §2.7–2.9).

use super::defaults;
use super::diag::Origin;

/// `<quorumd>`: the quorum disk daemon's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorumd {
    /// Source positions.
    pub origin: Origin,
    /// `interval`: seconds per cycle (default 1, at least 1).
    pub interval: u32,
    /// `tko`: missed cycles before a node is declared dead; see [`Quorumd::tko`].
    pub tko: Option<u32>,
    /// `tko_up`; see [`Quorumd::tko_up`].
    pub tko_up: Option<u32>,
    /// `upgrade_wait`; see [`Quorumd::upgrade_wait`].
    pub upgrade_wait: Option<u32>,
    /// `master_wait`; see [`Quorumd::master_wait`].
    pub master_wait: Option<u32>,
    /// `votes`; see [`ClusterConf::qdisk_votes`](super::ClusterConf::qdisk_votes).
    pub votes: Option<u32>,
    /// `min_score`; see [`Quorumd::required_score`].
    pub min_score: Option<u32>,
    /// `device`: path of the shared disk (this or `label` is required).
    pub device: Option<String>,
    /// `label`: find the disk by its mkqdisk label; wins over `device`.
    pub label: Option<String>,
    /// `cman_label`: the name registered with cman instead of the device path.
    pub cman_label: Option<String>,
    /// `status_file`: status written every cycle (`-` = stdout).
    pub status_file: Option<String>,
    /// `scheduler` (default rr).
    pub scheduler: Scheduler,
    /// `priority` (default 1).
    pub priority: i32,
    /// `reboot`: reboot when the score drops after having qualified (default on).
    pub reboot: bool,
    /// `allow_kill`: the master asks cman to kill evicted nodes (default on).
    pub allow_kill: bool,
    /// `stop_cman`: stop cman when qdiskd fails to start.
    pub stop_cman: bool,
    /// `paranoid`: reboot if a cycle takes longer than interval × tko.
    pub paranoid: bool,
    /// `io_timeout`: reboot if the disk did not answer within interval × tko.
    pub io_timeout: bool,
    /// `max_error_cycles`: exit after this many cycles with I/O errors (0 = never).
    pub max_error_cycles: u32,
    /// `use_uptime`: monotonic time source (default on).
    pub use_uptime: bool,
    /// `master_wins`: only the master's partition gets the votes. Unset: automatic for a
    /// two-node cluster without heuristics.
    pub master_wins: Option<bool>,
    /// `<heuristic>` children, in document order.
    pub heuristics: Vec<Heuristic>,
}

impl Default for Quorumd {
    fn default() -> Quorumd {
        Quorumd {
            origin: Origin::default(),
            interval: defaults::DEFAULT_QDISK_INTERVAL_S,
            tko: None,
            tko_up: None,
            upgrade_wait: None,
            master_wait: None,
            votes: None,
            min_score: None,
            device: None,
            label: None,
            cman_label: None,
            status_file: None,
            scheduler: Scheduler::Rr,
            priority: 1,
            reboot: true,
            allow_kill: true,
            stop_cman: false,
            paranoid: false,
            io_timeout: false,
            max_error_cycles: 0,
            use_uptime: true,
            master_wins: None,
            heuristics: Vec::new(),
        }
    }
}

impl Quorumd {
    /// Effective `tko`: the set value, else 10 (RHEL 5 qdiskd).
    pub fn tko(&self) -> u32 {
        self.tko.unwrap_or(defaults::DEFAULT_QDISK_TKO)
    }

    /// Effective `tko_up`: the set value or tko / 3, then at least 2.
    pub fn tko_up(&self) -> u32 {
        self.tko_up.unwrap_or(self.tko() / 3).max(2)
    }

    /// Effective `upgrade_wait`: the set value or 2, then at least 1.
    pub fn upgrade_wait(&self) -> u32 {
        self.upgrade_wait.unwrap_or(2).max(1)
    }

    /// Effective `master_wait`: the set value or tko / 2; if not above tko_up, tko_up + 1.
    pub fn master_wait(&self) -> u32 {
        let w = self.master_wait.unwrap_or(self.tko() / 2);
        if w <= self.tko_up() {
            self.tko_up() + 1
        } else {
            w
        }
    }

    /// Seconds without a heartbeat after which qdiskd declares a node dead: interval × tko.
    pub fn dead_after_s(&self) -> u64 {
        u64::from(self.interval.max(1)) * u64::from(self.tko())
    }

    /// Highest possible score: the sum of heuristic scores, or 1 without heuristics.
    pub fn max_score(&self) -> u32 {
        if self.heuristics.is_empty() {
            1
        } else {
            self.heuristics
                .iter()
                .map(|h| h.score)
                .fold(0, u32::saturating_add)
        }
    }

    /// Score a node needs: `min_score` if set above 0, else max_score / 2 + 1.
    pub fn required_score(&self) -> u32 {
        match self.min_score {
            Some(m) if m > 0 => m,
            _ => self.max_score() / 2 + 1,
        }
    }

    /// `interval × (tko − 1)`: the budget from which heuristic defaults are derived, seconds.
    fn heuristic_budget_s(&self) -> u32 {
        self.interval
            .max(1)
            .saturating_mul(self.tko().saturating_sub(1))
    }

    /// Effective interval of heuristic `h`, seconds: its own, else derived from the budget
    /// (≤4 → 1, ≤22 → 2, ≤39 → 3, ≤50 → 4, else 5). `None` when the budget is below 3 s,
    /// where the original leaves it undefined.
    pub fn heuristic_interval(&self, h: &Heuristic) -> Option<u32> {
        if let Some(i) = h.interval {
            return Some(i);
        }
        let budget = self.heuristic_budget_s();
        match budget {
            0..=2 => None,
            3..=4 => Some(1),
            5..=22 => Some(2),
            23..=39 => Some(3),
            40..=50 => Some(4),
            _ => Some(5),
        }
    }

    /// Effective tko of heuristic `h`: its own, else budget / interval. `None` as above.
    pub fn heuristic_tko(&self, h: &Heuristic) -> Option<u32> {
        if let Some(t) = h.tko {
            return Some(t);
        }
        let interval = self.heuristic_interval(h)?;
        if self.heuristic_budget_s() < 3 {
            return None;
        }
        Some((self.heuristic_budget_s() / interval.max(1)).max(1))
    }
}

/// `<quorumd scheduler>`: scheduling class of qdiskd's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheduler {
    /// SCHED_RR (default).
    #[default]
    Rr,
    /// SCHED_FIFO.
    Fifo,
    /// SCHED_OTHER (priority is then a nice value).
    Other,
}

impl Scheduler {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Fifo => "fifo",
            Scheduler::Other => "other",
        }
    }

    /// Parses a value the way qdiskd does: by its first letter, case-insensitively.
    pub fn from_name(s: &str) -> Option<Scheduler> {
        match s.chars().next()?.to_ascii_lowercase() {
            'r' => Some(Scheduler::Rr),
            'f' => Some(Scheduler::Fifo),
            'o' => Some(Scheduler::Other),
            _ => None,
        }
    }
}

/// `<heuristic program= score= interval= tko=>`: a check whose success adds to the score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heuristic {
    /// Source positions.
    pub origin: Origin,
    /// `program`: run with `/bin/sh -c`; exit 0 = success. Required.
    pub program: String,
    /// `score` (default 1, at least 1).
    pub score: u32,
    /// `interval`, seconds; see [`Quorumd::heuristic_interval`].
    pub interval: Option<u32>,
    /// `tko`: failures in a row before the heuristic counts as down.
    pub tko: Option<u32>,
}

impl Default for Heuristic {
    fn default() -> Heuristic {
        Heuristic {
            origin: Origin::default(),
            program: String::new(),
            score: 1,
            interval: None,
            tko: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(interval: u32, tko: Option<u32>) -> Quorumd {
        Quorumd {
            interval,
            tko,
            ..Quorumd::default()
        }
    }

    #[test]
    fn derived_timings_follow_qdiskd() {
        let d = q(1, Some(4));
        assert_eq!((d.tko_up(), d.upgrade_wait(), d.master_wait()), (2, 2, 3));
        let r = q(3, Some(4));
        assert_eq!(r.dead_after_s(), 12);
        let unset = q(1, None);
        assert_eq!(unset.tko(), 10);
        assert_eq!((unset.tko_up(), unset.master_wait()), (3, 5));
    }

    #[test]
    fn required_score_is_a_majority_of_heuristic_scores_unless_set() {
        let mut d = q(1, None);
        assert_eq!((d.max_score(), d.required_score()), (1, 1));
        d.heuristics = vec![
            Heuristic {
                score: 2,
                ..Heuristic::default()
            },
            Heuristic::default(),
        ];
        assert_eq!((d.max_score(), d.required_score()), (3, 2));
        d.min_score = Some(3);
        assert_eq!(d.required_score(), 3);
    }

    #[test]
    fn heuristic_defaults_derive_from_the_budget() {
        let h = Heuristic::default();
        // Reference deployment: interval 3, tko 4 → budget 9 s → every 2 s, tko 4.
        let r = q(3, Some(4));
        assert_eq!(
            (r.heuristic_interval(&h), r.heuristic_tko(&h)),
            (Some(2), Some(4))
        );
        // Budget 2 s: undefined in the original.
        let tight = q(1, Some(3));
        assert_eq!(
            (tight.heuristic_interval(&h), tight.heuristic_tko(&h)),
            (None, None)
        );
        let explicit = Heuristic {
            interval: Some(4),
            tko: Some(2),
            ..Heuristic::default()
        };
        assert_eq!(
            (
                tight.heuristic_interval(&explicit),
                tight.heuristic_tko(&explicit)
            ),
            (Some(4), Some(2))
        );
        assert_eq!(q(10, Some(10)).heuristic_interval(&h), Some(5));
    }

    #[test]
    fn scheduler_is_chosen_by_first_letter() {
        assert_eq!(Scheduler::from_name("RR"), Some(Scheduler::Rr));
        assert_eq!(Scheduler::from_name("fifo"), Some(Scheduler::Fifo));
        assert_eq!(Scheduler::from_name("other"), Some(Scheduler::Other));
        assert_eq!(Scheduler::from_name("batch"), None);
        assert_eq!(Scheduler::from_name(""), None);
    }
}
