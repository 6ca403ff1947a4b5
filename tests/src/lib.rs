//! The test kit: real namespaces, loop devices, agents run through the
//! real tools, and Pacemaker clusters made of namespaces.
//!
//! Everything here needs root (the suites skip loudly without it) and
//! cleans up after itself: sandboxes and nodes are killed by PID, loop
//! devices detached, network namespaces deleted.

pub mod agent;
pub mod cluster;
pub mod crash;
pub mod fleet;
pub mod guest;
pub mod lan;
pub mod loopdev;
pub mod plot;
pub mod sandbox;
pub mod timeline;
pub mod util;
pub mod vm;

pub use agent::{AgentCmd, BadInput, Outcome};
pub use cluster::{Cluster, Node};
pub use lan::{Host, Lan};
pub use loopdev::LoopDev;
pub use sandbox::Sandbox;
pub use util::{agent_bin, require_root, wait_until, Scratch};
