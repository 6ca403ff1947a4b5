//! A timeline of what the agents did, read back from their own log lines
//! in each node's Pacemaker log (the agents append to HA_LOGFILE).

use std::time::{Duration, SystemTime};

use crate::cluster::Cluster;

/// One agent log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the agent wrote it.
    pub at: SystemTime,
    /// The node whose log holds it.
    pub node: String,
    /// `agent(instance)`.
    pub who: String,
    /// The message after the level.
    pub what: String,
}

/// Parse one handoff log line: `<rfc3339> agent(instance)[pid]: LEVEL: message`.
pub fn parse(node: &str, line: &str) -> Option<Event> {
    let (stamp, rest) = line.split_once(' ')?;
    let at = humantime::parse_rfc3339(stamp).ok()?;
    let (tag, msg) = rest.split_once("]: ")?;
    let who = tag.split('[').next()?.to_owned();
    let what = msg
        .split_once(": ")
        .map(|(_, m)| m)
        .unwrap_or(msg)
        .to_owned();
    Some(Event {
        at,
        node: node.to_owned(),
        who,
        what,
    })
}

/// Every agent event in every node's log since `since`, in time order.
pub fn events(cluster: &Cluster, since: SystemTime) -> Vec<Event> {
    let logs: Vec<(&str, String)> = cluster
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.pacemaker_log()))
        .collect();
    events_in(&logs, since)
}

/// Every agent event in these (node, log text) since `since`, in time order.
pub fn events_in(logs: &[(&str, String)], since: SystemTime) -> Vec<Event> {
    let mut all: Vec<Event> = logs
        .iter()
        .flat_map(|(node, log)| log.lines().filter_map(|l| parse(node, l)))
        .filter(|e| e.at >= since)
        .collect();
    all.sort_by_key(|e| e.at);
    all
}

/// Take a client loop's latencies over time out of its summary (Null when
/// it has none).
pub fn take_series(summary: &mut serde_json::Value) -> serde_json::Value {
    summary
        .as_object_mut()
        .and_then(|o| o.remove("series"))
        .unwrap_or(serde_json::Value::Null)
}

/// How long after `up` a journal's slowest write ended (negative: before;
/// NaN when the summary lacks it).
pub fn stall_after(summary: &serde_json::Value, up: SystemTime) -> f64 {
    let began = summary["slowest_at"]
        .as_str()
        .and_then(|s| humantime::parse_rfc3339(s).ok());
    let (Some(began), Some(max)) = (began, summary["max_ms"].as_f64()) else {
        return f64::NAN;
    };
    let ended = began + Duration::from_secs_f64(max / 1000.0);
    match ended.duration_since(up) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    }
}

/// When the first event of `node` by `who` (an `agent(instance)` suffix,
/// e.g. "(a_vip)") that begins with `what` was written.
pub fn first(events: &[Event], node: &str, who: &str, what: &str) -> Option<SystemTime> {
    events
        .iter()
        .find(|e| e.node == node && e.who.ends_with(who) && e.what.starts_with(what))
        .map(|e| e.at)
}

/// When the address of the group whose instances begin with `id` (e.g.
/// "a" for a_vip) went down on `from` (its vip's stop ended) and answered
/// on `to` (its start ended).
pub fn address_down(
    events: &[Event],
    id: &str,
    from: &str,
    to: &str,
) -> Option<(SystemTime, SystemTime)> {
    let vip = format!("({id}_vip)");
    Some((
        first(events, from, &vip, "stop succeeded")?,
        first(events, to, &vip, "start succeeded")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agent_lines() {
        let e = parse(
            "n1",
            "2026-11-25T03:54:50.173Z fs(export_a_fs)[55]: INFO: stop succeeded in 3.2 ms",
        )
        .unwrap();
        assert_eq!(e.node, "n1");
        assert_eq!(e.who, "fs(export_a_fs)");
        assert_eq!(e.what, "stop succeeded in 3.2 ms");
        assert!(parse(
            "n1",
            "Nov 25 03:54:45.421 n1 pacemaker-based [21] (x) warning: y"
        )
        .is_none());
    }

    #[test]
    fn a_stall_is_counted_from_the_address_to_the_end_of_the_slowest_write() {
        let v = serde_json::json!({"max_ms": 3000.0, "slowest_at": "2026-12-02T00:00:10.000Z"});
        let up = humantime::parse_rfc3339("2026-12-02T00:00:12.500Z").unwrap();
        assert!((stall_after(&v, up) - 500.0).abs() < 1.0);
        assert!(stall_after(&serde_json::json!({}), up).is_nan());
    }
}
