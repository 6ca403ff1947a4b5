//! OCF exit codes and the error type every action returns.

use std::fmt;

/// An OCF 1.1 exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// 0: the action succeeded (monitor: the resource runs).
    Success = 0,
    /// 1: a failure that may go away (soft error).
    Generic = 1,
    /// 2: bad arguments, or a configuration unusable on this node.
    Args = 2,
    /// 3: the action is not implemented.
    Unimplemented = 3,
    /// 4: insufficient privileges.
    Perm = 4,
    /// 5: something the resource needs is not installed on this node.
    Installed = 5,
    /// 6: the configuration is wrong on every node.
    Configured = 6,
    /// 7: the resource is cleanly stopped.
    NotRunning = 7,
}

impl Status {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The short name Pacemaker prints for this code.
    pub fn name(self) -> &'static str {
        match self {
            Status::Success => "ok",
            Status::Generic => "error",
            Status::Args => "invalid parameter",
            Status::Unimplemented => "unimplemented feature",
            Status::Perm => "insufficient privileges",
            Status::Installed => "not installed",
            Status::Configured => "not configured",
            Status::NotRunning => "not running",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.name())
    }
}

/// A failed action: the exit code and the one line a person reads in
/// `ocf-exit-reason:`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct OcfError {
    /// The exit code the action ends with.
    pub status: Status,
    /// Why, in one line.
    pub reason: String,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $fn:ident => $status:ident),* $(,)?) => {
        impl OcfError {
            $(
                $(#[$doc])*
                pub fn $fn(reason: impl Into<String>) -> Self {
                    Self::new(Status::$status, reason)
                }
            )*
        }
    };
}

impl OcfError {
    /// An error with an explicit status.
    pub fn new(status: Status, reason: impl Into<String>) -> Self {
        // An exit reason is one line: Pacemaker keeps only the first.
        let reason = reason.into().replace(['\n', '\r'], " ");
        Self { status, reason }
    }

    /// Prefix the reason with what was being done.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.reason = format!("{what}: {}", self.reason);
        self
    }
}

constructors! {
    /// 1: generic, possibly transient failure.
    generic => Generic,
    /// 2: bad argument or configuration unusable on this node.
    args => Args,
    /// 3: unimplemented.
    unimplemented => Unimplemented,
    /// 4: insufficient privileges.
    perm => Perm,
    /// 5: required component missing on this node.
    installed => Installed,
    /// 6: configuration wrong everywhere.
    configured => Configured,
    /// 7: cleanly stopped.
    not_running => NotRunning,
}

/// The result of an OCF action.
pub type Result<T, E = OcfError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_ocf_1_1() {
        let all = [
            (Status::Success, 0),
            (Status::Generic, 1),
            (Status::Args, 2),
            (Status::Unimplemented, 3),
            (Status::Perm, 4),
            (Status::Installed, 5),
            (Status::Configured, 6),
            (Status::NotRunning, 7),
        ];
        for (status, code) in all {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }

    #[test]
    fn reasons_are_one_line() {
        let e = OcfError::generic("first\nsecond\r\nthird");
        assert_eq!(e.reason, "first second  third");
        assert_eq!(e.status, Status::Generic);
    }

    #[test]
    fn context_prefixes() {
        let e = OcfError::installed("no such device").context("device=/dev/x");
        assert_eq!(e.to_string(), "device=/dev/x: no such device");
        assert_eq!(e.status, Status::Installed);
    }
}
