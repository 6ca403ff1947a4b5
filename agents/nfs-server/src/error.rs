//! Why an action of ocf:handoff:nfs-server fails, and the OCF code of each.

use std::path::PathBuf;

use ocf::{OcfError, Status};

/// A failure of the virtual NFS server agent.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A program the server runs is missing.
    #[error("{0} is not installed: install nfs-kernel-server, nfs-common and rpcbind")]
    NotInstalled(String),
    /// The kernel has no nfsd.
    #[error(
        "the kernel has no NFS server (nfsd is not in /proc/filesystems): load the nfsd module"
    )]
    NoNfsd,
    /// The node interface does not exist.
    #[error("nic {0} does not exist on this node: set nic to the interface of the clients' network (ip link)")]
    NoNic(String),
    /// The exported filesystem is not mounted.
    #[error("{0} is not a mount point: the group's fs resource must start before nfs-server")]
    NotMounted(PathBuf),
    /// The name is taken by a network namespace that is not ours.
    #[error("network namespace {0} exists but was not made by nfs-server (no {1}): choose another name, or delete it with ip netns delete")]
    ForeignNetns(String, PathBuf),
    /// Another server's namespace already uses this directory.
    #[error("virtual NFS server {other} on this node already serves {dir}: one server per exported filesystem")]
    DirectoryTaken { other: String, dir: PathBuf },
    /// A daemon did not come up.
    #[error("{daemon} did not start in virtual NFS server {name}: {why}")]
    Daemon {
        name: String,
        daemon: &'static str,
        why: String,
    },
    /// A daemon of a running server is gone.
    #[error("{0}")]
    Unhealthy(String),
    /// nfsd started without NFSv4 client tracking.
    #[error("nfsd of virtual NFS server {0} started without nfsdcld as its NFSv4 client tracker (see the kernel log): its NFSv4 clients could not reclaim, nor its grace period end early; check that nfsdcld runs and the kernel has NFSv4 client tracking")]
    NoTracking(String),
    /// Locks held for clients survived the shutdown.
    #[error("{count} lock(s) held for NFS clients on {dir} survived the shutdown of virtual NFS server {name}; the filesystem must not be unmounted")]
    LocksRemain {
        name: String,
        dir: PathBuf,
        count: usize,
    },
    /// Processes would not leave the server's namespaces.
    #[error("processes {pids} of virtual NFS server {name} did not exit; its namespaces (and the exported filesystem) stay in use")]
    Stuck { name: String, pids: String },
    /// A namespace operation failed.
    #[error("{what} for virtual NFS server {name}: {why}")]
    Namespace {
        name: String,
        what: String,
        why: String,
    },
    /// rtnetlink failed.
    #[error("netlink: {0}")]
    Netlink(String),
    /// The server's namespaces cannot be entered.
    #[error(transparent)]
    Enter(#[from] vserver::EnterError),
    /// File system work failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ServerError {
    /// An I/O error with what was being done to which path.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ServerError::Io { what, path, source }
    }
}

impl From<ServerError> for OcfError {
    fn from(e: ServerError) -> Self {
        use ServerError::*;
        let status = match &e {
            NotInstalled(_) | NoNfsd => Status::Installed,
            NoNic(_) => Status::Args,
            ForeignNetns(..) | DirectoryTaken { .. } => Status::Configured,
            // Retried on this node: each can pass on the next attempt.
            NotMounted(_)
            | Daemon { .. }
            | Unhealthy(_)
            | NoTracking(_)
            | LocksRemain { .. }
            | Stuck { .. }
            | Namespace { .. }
            | Netlink(_)
            | Enter(_)
            | Io { .. } => Status::Generic,
        };
        OcfError::new(status, e.to_string())
    }
}
