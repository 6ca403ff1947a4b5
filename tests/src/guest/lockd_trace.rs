//! What the kernel's one lockd thread was doing during a drain, sampled
//! from its stack: every NLM request of every namespace (and the client's
//! callbacks, in this one-kernel VM) waits for that thread, so a slow lock
//! operation of a group that stays is lined up with what held lockd then.

use std::time::{Duration, SystemTime};

use super::report::{metric, note};
use super::sys::{self, Sampler};

/// One look at lockd: when, its scheduler state (R, S, D) and its
/// innermost frames below the scheduler's.
pub struct Sample {
    at: SystemTime,
    state: char,
    frames: String,
}

/// One sample of `pid`, or None once it is gone.
fn sample(pid: u32) -> Option<Sample> {
    let state = sys::stat_field(pid, 0)?.chars().next()?;
    let stack = std::fs::read_to_string(format!("/proc/{pid}/stack")).ok()?;
    // "[<0>] rpc_wait_bit_killable+0x1e/0xa0 [sunrpc]": the name alone,
    // below the scheduler's own frames.
    let frames: Vec<&str> = stack
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|f| f.split('+').next())
        .filter(|f| !f.contains("schedule"))
        .take(4)
        .collect();
    Some(Sample {
        at: SystemTime::now(),
        state,
        frames: frames.join(" < "),
    })
}

/// Sample lockd's stack every `every` from now, until it is gone or the
/// sampler finishes; None (and a note) when no lockd runs.
pub fn start(every: Duration) -> Option<Sampler<Sample>> {
    let Some(&pid) = sys::pids_named("lockd").first() else {
        note("lockd trace: no lockd thread to sample");
        return None;
    };
    Some(Sampler::every(every, move |all| match sample(pid) {
        Some(s) => {
            all.push(s);
            true
        }
        None => false,
    }))
}

impl Sample {
    /// Its state and frames, as the report groups samples.
    fn key(&self) -> String {
        format!("{} {}", self.state, self.frames)
    }

    /// Whether lockd is waiting inside a request (on an upcall to a
    /// server's mountd, an RPC to its statd, a lock), not for one.
    fn waiting(&self) -> bool {
        matches!(self.state, 'S' | 'D') && !self.frames.starts_with("svc_recv")
    }
}

/// The longest time lockd spent waiting inside one request, from runs of
/// consecutive waiting samples, in ms.
fn longest_wait(samples: &[Sample]) -> f64 {
    let mut longest = Duration::ZERO;
    let mut since: Option<SystemTime> = None;
    for s in samples {
        match (s.waiting(), since) {
            (true, None) => since = Some(s.at),
            (true, Some(a)) => longest = longest.max(s.at.duration_since(a).unwrap_or_default()),
            (false, _) => since = None,
        }
    }
    longest.as_secs_f64() * 1000.0
}

/// Note where lockd's time went over `samples` (its states and commonest
/// stacks, as shares of the samples; metric `{what}_lockd_longest_wait_ms`,
/// [`longest_wait`]), and what it did in the window of the slowest
/// operation (`slowest_at`, an RFC 3339 time, lasting `max_ms`), as runs
/// of the same stack.
pub fn report(what: &str, samples: &[Sample], slowest_at: Option<&str>, max_ms: f64) {
    if samples.is_empty() {
        return;
    }
    metric(
        &format!("{what}_lockd_longest_wait_ms"),
        longest_wait(samples),
        "ms",
    );
    let mut by: Vec<(String, usize)> = Vec::new();
    for s in samples {
        let key = s.key();
        match by.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => by.push((key, 1)),
        }
    }
    by.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let share = |n: usize| 100.0 * n as f64 / samples.len() as f64;
    let top: Vec<String> = by
        .iter()
        .take(8)
        .map(|(k, n)| format!("  {:5.1} %  {k}", share(*n)))
        .collect();
    note(format!(
        "lockd trace ({what}): {} samples, its commonest states and stacks:\n{}",
        samples.len(),
        top.join("\n")
    ));
    let Some(from) = slowest_at.and_then(|s| humantime::parse_rfc3339(s).ok()) else {
        return;
    };
    let to = from + Duration::from_secs_f64(max_ms.max(0.0) / 1000.0);
    let mut runs: Vec<(SystemTime, SystemTime, String)> = Vec::new();
    for s in samples.iter().filter(|s| s.at >= from && s.at <= to) {
        let key = s.key();
        match runs.last_mut() {
            Some((_, end, k)) if *k == key => *end = s.at,
            _ => runs.push((s.at, s.at, key)),
        }
    }
    if runs.is_empty() {
        return;
    }
    let ms = |t: SystemTime| t.duration_since(from).unwrap_or_default().as_millis();
    let lines: Vec<String> = runs
        .iter()
        .map(|(a, b, k)| format!("  +{:>5} to +{:>5} ms  {k}", ms(*a), ms(*b)))
        .collect();
    note(format!(
        "lockd trace ({what}): during the slowest operation ({max_ms:.0} ms from {}):\n{}",
        slowest_at.unwrap_or(""),
        lines.join("\n")
    ));
}
