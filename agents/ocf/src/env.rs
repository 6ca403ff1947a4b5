//! What Pacemaker passes besides the parameters: instance name, monitor
//! depth, time budget, interval and the logging settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::exit::{OcfError, Result};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A Pacemaker meta attribute (`OCF_RESKEY_CRM_meta_<name>`).
pub fn meta(name: &str) -> Option<String> {
    var(&format!("OCF_RESKEY_CRM_meta_{name}"))
}

/// The resource instance name (`OCF_RESOURCE_INSTANCE`).
pub fn instance() -> Option<String> {
    var("OCF_RESOURCE_INSTANCE")
}

/// Monitor depth from `OCF_CHECK_LEVEL`: 0, 10 (read test) or 20 (write test).
pub fn check_level() -> Result<u32> {
    match var("OCF_CHECK_LEVEL") {
        None => Ok(0),
        Some(raw) => parse_check_level(&raw),
    }
}

/// Parse a monitor depth; only the depths the agents implement are accepted.
pub fn parse_check_level(raw: &str) -> Result<u32> {
    match raw.trim() {
        "0" => Ok(0),
        "10" => Ok(10),
        "20" => Ok(20),
        other => Err(OcfError::configured(format!(
            "OCF_CHECK_LEVEL={other:?} is not supported; use 0, 10 (read test) or 20 (write test)"
        ))),
    }
}

/// The action's time budget (`OCF_RESKEY_CRM_meta_timeout`, milliseconds).
pub fn timeout() -> Option<Duration> {
    meta("timeout")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// The recurring-monitor interval; `None` (or 0) means a probe.
pub fn interval() -> Option<Duration> {
    meta("interval")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Where state files live (`HA_RSCTMP`, default `/run/resource-agents`).
pub fn rsctmp() -> PathBuf {
    var("HA_RSCTMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/resource-agents"))
}

/// Debug logging requested (`HA_debug=1`).
pub fn debug() -> bool {
    matches!(var("HA_debug").as_deref(), Some("1" | "yes" | "true"))
}

/// The syslog facility (`HA_LOGFACILITY`/`HA_logfacility`); `None` for "none".
pub fn log_facility() -> Option<String> {
    let f = var("HA_LOGFACILITY")
        .or_else(|| var("HA_logfacility"))
        .unwrap_or_else(|| "daemon".to_owned());
    (f != "none").then_some(f)
}

/// The cluster log file agents append to (`HA_LOGFILE`/`HA_logfile`).
pub fn log_file() -> Option<PathBuf> {
    var("HA_LOGFILE")
        .or_else(|| var("HA_logfile"))
        .map(PathBuf::from)
}

/// The debug log file (`HA_DEBUGLOG`/`HA_debugfile`).
pub fn debug_file() -> Option<PathBuf> {
    var("HA_DEBUGLOG")
        .or_else(|| var("HA_debugfile"))
        .map(PathBuf::from)
}

/// The prefix of exit-reason lines.
pub fn exit_reason_prefix() -> String {
    var("OCF_EXIT_REASON_PREFIX").unwrap_or_else(|| "ocf-exit-reason:".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_levels() {
        assert_eq!(parse_check_level("0"), Ok(0));
        assert_eq!(parse_check_level("20"), Ok(20));
        let e = parse_check_level("15").unwrap_err();
        assert_eq!(e.status, crate::Status::Configured);
        assert!(e.reason.contains("use 0, 10"));
    }
}
