//! The `Agent` trait every handoff agent implements, and the context an
//! action runs in.

use std::fmt;
use std::path::PathBuf;

use crate::action::Action;
use crate::deadline::Deadline;
use crate::exit::Result;
use crate::log::Logger;
use crate::param::Params;
use crate::state::StateFile;

/// One action as advertised in the metadata.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    /// The action.
    pub action: Action,
    /// Default timeout, seconds.
    pub timeout_secs: u32,
    /// Suggested interval for recurring monitors, seconds.
    pub interval_secs: Option<u32>,
    /// Monitor depth (OCF_CHECK_LEVEL) of this entry.
    pub depth: Option<u32>,
}

impl ActionSpec {
    /// The action's name in the metadata: OCF 1.0's, which names the
    /// reload Pacemaker then calls `reload`.
    pub fn metadata_name(&self) -> &'static str {
        match self.action {
            Action::Reload => "reload",
            other => other.name(),
        }
    }

    /// An action with a default timeout.
    pub const fn new(action: Action, timeout_secs: u32) -> Self {
        Self {
            action,
            timeout_secs,
            interval_secs: None,
            depth: None,
        }
    }

    /// A recurring monitor at a depth.
    pub const fn monitor(interval_secs: u32, timeout_secs: u32, depth: u32) -> Self {
        Self {
            action: Action::Monitor,
            timeout_secs,
            interval_secs: Some(interval_secs),
            depth: Some(depth),
        }
    }
}

/// What an agent says about itself in its metadata and man page.
#[derive(Clone, Copy, Debug)]
pub struct AgentInfo {
    /// The provider (`ocf:<provider>:<name>`): the directory under
    /// resource.d, and the prefix of man pages and state files.
    pub provider: &'static str,
    /// The agent name (`ocf:<provider>:<name>`).
    pub name: &'static str,
    /// The agent's own version.
    pub version: &'static str,
    /// One line.
    pub shortdesc: &'static str,
    /// What it manages and how.
    pub longdesc: &'static str,
    /// Actions with their default timeouts.
    pub actions: &'static [ActionSpec],
    /// A `pcs resource create` line for the man page.
    pub example: &'static str,
}

impl AgentInfo {
    /// The default timeout of an action, from the advertised actions.
    pub fn default_timeout(&self, action: Action) -> std::time::Duration {
        let secs = self
            .actions
            .iter()
            .find(|a| a.action == action && a.depth.unwrap_or(0) == 0)
            .map(|a| a.timeout_secs)
            .unwrap_or(20);
        std::time::Duration::from_secs(u64::from(secs))
    }
}

/// What a successful monitor observed, shown by `monitor --json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts(pub Vec<(&'static str, String)>);

impl Facts {
    /// No facts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one observation.
    pub fn with(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.0.push((key, value.to_string()));
        self
    }

    /// The value of one observation.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything an action needs besides its parameters.
#[derive(Debug)]
pub struct Ctx {
    /// The agent's provider.
    pub provider: &'static str,
    /// The agent name.
    pub agent: &'static str,
    /// The resource instance (`OCF_RESOURCE_INSTANCE`).
    pub instance: String,
    /// The action being run.
    pub action: Action,
    /// Monitor depth: 0, 10 or 20.
    pub check_level: u32,
    /// The action's time budget.
    pub deadline: Deadline,
    /// A monitor with no interval: Pacemaker asking whether the resource
    /// runs here, not checking a resource it started.
    pub probe: bool,
    /// The invocation's logger.
    pub log: Logger,
    /// `HA_RSCTMP`.
    pub state_dir: PathBuf,
}

impl Ctx {
    /// A state file of this instance.
    pub fn state(&self, kind: &str) -> StateFile {
        StateFile::new(
            &self.state_dir,
            self.provider,
            self.agent,
            &self.instance,
            kind,
        )
    }
}

/// One OCF resource agent. Parameters are parsed and checked by the library
/// before any of these is called.
pub trait Agent {
    /// The agent's parameters.
    type Params: Params;

    /// Name, descriptions and actions.
    const INFO: AgentInfo;

    /// Checks beyond parsing that need this node (devices, interfaces).
    /// Runs for validate-all and before start; must change nothing.
    fn validate(&self, ctx: &Ctx, params: &Self::Params) -> Result<()>;

    /// Bring the resource up; success when it already is.
    fn start(&self, ctx: &Ctx, params: &Self::Params) -> Result<()>;

    /// Take the resource down; success when it already is; an error when it
    /// could not be taken down.
    fn stop(&self, ctx: &Ctx, params: &Self::Params) -> Result<()>;

    /// `Ok` with what was seen when running; `OcfError::not_running` when
    /// cleanly stopped; any other error when failed.
    fn monitor(&self, ctx: &Ctx, params: &Self::Params) -> Result<Facts>;

    /// Apply reloadable parameters to a running resource. Only called after
    /// the library has checked that nothing else changed.
    fn reload(&self, _ctx: &Ctx, _params: &Self::Params) -> Result<()> {
        Ok(())
    }
}
