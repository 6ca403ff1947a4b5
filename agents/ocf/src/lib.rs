//! The OCF resource agent contract (Resource Agent API 1.1), shared by every
//! handoff agent: actions and exit codes, parameters declared once as typed
//! Rust, metadata and man page rendered from that declaration, logging,
//! state files, time budgets and the command line.
//!
//! An agent is a struct implementing [`Agent`] with a `#[derive(Params)]`
//! parameter struct; its `main` is `ocf::main(MyAgent)`.

pub mod action;
pub mod agent;
pub mod cli;
pub mod deadline;
pub mod env;
pub mod exit;
pub mod helper;
pub mod log;
pub mod manpage;
pub mod metadata;
pub mod param;
pub mod runner;
pub mod state;
pub mod values;

pub use action::Action;
pub use agent::{ActionSpec, Agent, AgentInfo, Ctx, Facts};
pub use deadline::Deadline;
pub use exit::{OcfError, Result, Status};
pub use log::Logger;
pub use ocf_derive::Params;
pub use param::{
    AbsPath, Bounded, Content, Deprecated, Nice, ParamSpec, ParamValue, Params, Source, Time,
};
pub use runner::{main, run};
pub use state::StateFile;
pub use values::{HostName, RelDir};
