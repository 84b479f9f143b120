//! Recovery policy: restart counting and what a failure leads to (spec/rgmanager.md §3.2–§3.4).

use super::state::ServiceState;
use crate::config::Recovery;
use crate::Millis;
use std::collections::VecDeque;

/// The restart counter of one service (`restart_counter.c`): restarts within the last
/// `restart_expire_time`. Kept by the decision maker, not replicated (as in the original,
/// where the recovering node keeps it in memory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestartCounter {
    max_restarts: u32,
    expire_ms: u64,
    times: VecDeque<Millis>,
}

impl RestartCounter {
    /// A counter allowing `max_restarts` restarts (0 = no limit, never exceeded) within
    /// `expire_ms` (0 = restarts never expire).
    pub fn new(max_restarts: u32, expire_ms: u64) -> RestartCounter {
        RestartCounter {
            max_restarts,
            expire_ms,
            times: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Millis) {
        if self.expire_ms == 0 {
            return;
        }
        while let Some(&t) = self.times.front() {
            if now.since(t) >= self.expire_ms {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// Restarts counted at `now`.
    pub fn count(&mut self, now: Millis) -> usize {
        self.expire(now);
        self.times.len()
    }

    /// Exceeded ⇔ restarts within the window ≥ `max_restarts` (with `max_restarts` > 0).
    pub fn exceeded(&mut self, now: Millis) -> bool {
        self.max_restarts > 0 && self.count(now) >= self.max_restarts as usize
    }

    /// Counts a restart at `now` (only when a limit is configured, like the original).
    pub fn record(&mut self, now: Millis) {
        if self.max_restarts == 0 {
            return;
        }
        self.expire(now);
        self.times.push_back(now);
        // Bounded: more than max_restarts entries never change the answer.
        while self.times.len() > self.max_restarts as usize {
            self.times.pop_front();
        }
    }

    /// Forgets every restart.
    pub fn clear(&mut self) {
        self.times.clear();
    }
}

/// What the recovery policy does with a `recovering` service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryStep {
    /// Start it again on the node where it failed (domain check skipped).
    RestartInPlace,
    /// Start it on another node chosen by `best_target_node`.
    Relocate,
    /// Disable it.
    Disable,
}

/// `handle_recover_req` (spec §3.3): the step for `policy`, counting the restart when it is
/// one.
pub fn recovery_step(policy: Recovery, counter: &mut RestartCounter, now: Millis) -> RecoveryStep {
    match policy {
        Recovery::Relocate => {
            counter.clear();
            RecoveryStep::Relocate
        }
        Recovery::Disable => {
            counter.clear();
            RecoveryStep::Disable
        }
        Recovery::Restart | Recovery::RestartDisable => {
            if counter.exceeded(now) {
                counter.clear();
                if policy == Recovery::Restart {
                    RecoveryStep::Relocate
                } else {
                    RecoveryStep::Disable
                }
            } else {
                counter.record(now);
                RecoveryStep::RestartInPlace
            }
        }
    }
}

/// A failure a node reports about a service it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A status check failed while it was started.
    Status,
    /// The start agent failed.
    Start,
    /// The stop agent failed.
    Stop,
}

/// The state a failure leads to (spec §1.4, §3.2, §3.4): a failed status check or start
/// is stopped for recovery (`recoverable`, then `recovering` once stopped); a failed stop
/// is `failed`, except that a disable always ends `disabled`.
pub fn after_failure(failure: Failure, disabling: bool) -> ServiceState {
    match failure {
        Failure::Status | Failure::Start => ServiceState::Recoverable,
        Failure::Stop if disabling => ServiceState::Disabled,
        Failure::Stop => ServiceState::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_restarts_zero_is_never_exceeded() {
        // §3.3: default always restarts locally first
        let mut c = RestartCounter::new(0, 0);
        for t in 0..100 {
            assert_eq!(
                recovery_step(Recovery::Restart, &mut c, Millis(t)),
                RecoveryStep::RestartInPlace
            );
        }
    }

    #[test]
    fn max_restarts_n_allows_n_restarts_then_relocates_and_clears() {
        // §3.3: exceeded ⇔ restarts in window ≥ max_restarts
        let mut c = RestartCounter::new(2, 60_000);
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(0)),
            RecoveryStep::RestartInPlace
        );
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(1)),
            RecoveryStep::RestartInPlace
        );
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(2)),
            RecoveryStep::Relocate
        );
        assert_eq!(c.count(Millis(3)), 0, "the counter is cleared");
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(4)),
            RecoveryStep::RestartInPlace
        );
    }

    #[test]
    fn restarts_older_than_the_expire_time_are_forgotten() {
        // §3.3: restart_expire_time window
        let mut c = RestartCounter::new(1, 10_000);
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(0)),
            RecoveryStep::RestartInPlace
        );
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(10_000)),
            RecoveryStep::RestartInPlace
        );
        assert_eq!(
            recovery_step(Recovery::Restart, &mut c, Millis(15_000)),
            RecoveryStep::Relocate
        );
    }

    #[test]
    fn expire_time_zero_never_forgets() {
        let mut c = RestartCounter::new(1, 0);
        c.record(Millis(0));
        assert!(c.exceeded(Millis(u64::MAX)));
    }

    #[test]
    fn restart_disable_disables_when_the_threshold_is_exceeded() {
        // §3.3
        let mut c = RestartCounter::new(1, 0);
        assert_eq!(
            recovery_step(Recovery::RestartDisable, &mut c, Millis(0)),
            RecoveryStep::RestartInPlace
        );
        assert_eq!(
            recovery_step(Recovery::RestartDisable, &mut c, Millis(1)),
            RecoveryStep::Disable
        );
    }

    #[test]
    fn relocate_and_disable_policies_clear_the_counter() {
        // §3.3
        let mut c = RestartCounter::new(3, 0);
        c.record(Millis(0));
        assert_eq!(
            recovery_step(Recovery::Relocate, &mut c, Millis(1)),
            RecoveryStep::Relocate
        );
        assert_eq!(c.count(Millis(1)), 0);
        c.record(Millis(2));
        assert_eq!(
            recovery_step(Recovery::Disable, &mut c, Millis(3)),
            RecoveryStep::Disable
        );
        assert_eq!(c.count(Millis(3)), 0);
    }

    #[test]
    fn failures_lead_to_recoverable_failed_or_disabled() {
        // §1.4, §3.4
        assert_eq!(
            after_failure(Failure::Status, false),
            ServiceState::Recoverable
        );
        assert_eq!(
            after_failure(Failure::Start, false),
            ServiceState::Recoverable
        );
        assert_eq!(after_failure(Failure::Stop, false), ServiceState::Failed);
        assert_eq!(after_failure(Failure::Stop, true), ServiceState::Disabled);
    }
}
