//! The actions an agent is invoked with.

use std::fmt;
use std::str::FromStr;

/// One OCF action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Bring the resource up.
    Start,
    /// Take the resource down.
    Stop,
    /// Report the resource's state (`status` is accepted as an alias).
    Monitor,
    /// Check the configuration without changing anything.
    ValidateAll,
    /// Print the metadata XML.
    MetaData,
    /// Apply changed reloadable parameters (OCF 1.1 `reload-agent`, or the
    /// legacy `reload` that Pacemaker uses for OCF 1.0 metadata).
    Reload,
    /// Print the usage line.
    Usage,
}

impl Action {
    /// Every action with its canonical name, for usage lines.
    pub const ALL: [Action; 7] = [
        Action::Start,
        Action::Stop,
        Action::Monitor,
        Action::ValidateAll,
        Action::MetaData,
        Action::Reload,
        Action::Usage,
    ];

    /// The canonical name of the action.
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Monitor => "monitor",
            Action::ValidateAll => "validate-all",
            Action::MetaData => "meta-data",
            Action::Reload => "reload-agent",
            Action::Usage => "usage",
        }
    }

    /// Whether the action may change the system.
    pub fn changes_system(self) -> bool {
        matches!(self, Action::Start | Action::Stop | Action::Reload)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The action name is not one this agent knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action '{0}'")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" | "status" => Action::Monitor,
            "validate-all" => Action::ValidateAll,
            "meta-data" | "metadata" => Action::MetaData,
            "reload-agent" | "reload" => Action::Reload,
            "usage" | "help" => Action::Usage,
            other => return Err(UnknownAction(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert_eq!("status".parse::<Action>(), Ok(Action::Monitor));
        assert_eq!("reload".parse::<Action>(), Ok(Action::Reload));
        assert_eq!("reload-agent".parse::<Action>(), Ok(Action::Reload));
        assert_eq!(
            "promote".parse::<Action>(),
            Err(UnknownAction("promote".into()))
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(a.name().parse::<Action>(), Ok(a));
        }
    }
}
