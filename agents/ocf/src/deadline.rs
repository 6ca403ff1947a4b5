//! The time budget of one action.

use std::time::{Duration, Instant};

/// When the action must be finished by. Pacemaker kills an agent that
/// overruns its timeout, so work stops early enough to report why.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
}

impl Deadline {
    /// A budget counted from now.
    pub fn new(budget: Duration) -> Self {
        Self {
            start: Instant::now(),
            budget,
        }
    }

    /// The whole budget.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Time since the action began.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Time left for work, keeping a margin (a tenth of the budget, between
    /// 0.5 s and 5 s) to clean up and report before Pacemaker's own timeout.
    pub fn remaining(&self) -> Duration {
        let margin = (self.budget / 10).clamp(Duration::from_millis(500), Duration::from_secs(5));
        self.budget
            .saturating_sub(margin)
            .saturating_sub(self.start.elapsed())
    }

    /// No time left for more work.
    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_kept() {
        let d = Deadline::new(Duration::from_secs(20));
        assert!(d.remaining() <= Duration::from_secs(18));
        assert!(d.remaining() > Duration::from_secs(17));
        assert!(!d.expired());
        let tiny = Deadline::new(Duration::from_millis(100));
        assert!(tiny.expired());
    }
}
