//! What can go wrong, with the OCF exit code each failure maps to.

use std::path::PathBuf;

use ocf::{OcfError, Status};

/// A failure of an nlm-locks action.
#[derive(Debug, thiserror::Error)]
pub enum NlmError {
    /// The kernel module's device is missing.
    #[error("backend=kmod needs /dev/folocks, which does not exist: load the handoff kernel module (see kmod/), or use backend=procfs")]
    NoKmod,
    /// A request to the kernel module failed.
    #[error(transparent)]
    Kmod(#[from] crate::kmod::KmodError),
    /// The filesystem type does not fit a devno request.
    #[error(
        "filesystem type {0:?} is too long for a kmod_request=devno request; use kmod_request=fd"
    )]
    FstypeName(String),
    /// The fsid names another filesystem in the export table.
    #[error("fsid {fsid} is exported from {path}, which is not on the filesystem mounted at {dir}: set fsid to the fsid of this group's export resource")]
    FsidElsewhere {
        fsid: String,
        path: PathBuf,
        dir: PathBuf,
    },
    /// nfsd's control files are missing.
    #[error("{0} does not exist: this node's NFS server is not running (or the nfsd filesystem is not mounted at /proc/fs/nfsd)")]
    NoNfsd(PathBuf),
    /// nfs-utils' sm-notify is missing.
    #[error("sm-notify is not installed (nfs-common)")]
    NoSmNotify,
    /// The exported filesystem is not mounted.
    #[error(
        "{0} is not a mount point: start the group's filesystem first (order nlm-locks after it)"
    )]
    NotMounted(PathBuf),
    /// A different filesystem is mounted than at start.
    #[error("{dir} now holds device {now}, not {then} as at start; refusing to drop locks on another filesystem")]
    OtherFilesystem {
        dir: PathBuf,
        now: String,
        then: String,
    },
    /// Writing a control file failed.
    #[error("writing {value:?} to {file}: {source}")]
    Control {
        file: PathBuf,
        value: String,
        source: std::io::Error,
    },
    /// Locks survived the drop.
    #[error("{count} lock(s) on {dev} ({dir}) remain after the drop ({owners}); the filesystem must not be unmounted under them")]
    Remaining {
        count: usize,
        dev: String,
        dir: PathBuf,
        owners: String,
    },
    /// Only NFSv4 state survived: the kernel's unlock_filesystem revokes none.
    #[error("{count} NFSv4 lock(s) and delegation(s) on {dir} remain after the drop: this kernel's unlock_filesystem revokes no NFSv4 state (kernels before 6.9 do not), so a node-wide server cannot release this filesystem while NFSv4 clients hold state on it; serve the export from a virtual NFS server of its own (ocf:handoff:nfs-server), or over NFSv3 only, on this kernel")]
    V4Kept { count: usize, dir: PathBuf },
    /// Restarting nfsd for a grace period would drop other exports' locks.
    #[error("grace=restart would drop the {0} NLM lock(s) that other exports of this node's NFS server hold; give each export group a virtual NFS server (ocf:handoff:nfs-server), whose grace period is its own")]
    RestartWouldDrop(usize),
    /// The lock table hides lockd's locks: other exports' cannot be counted.
    #[error("grace=restart cannot tell whether other exports of this node's NFS server hold NLM locks: this /proc belongs to a PID namespace, which hides lockd's locks; run the cluster in the initial PID namespace, or give each export group a virtual NFS server (ocf:handoff:nfs-server)")]
    LocksHidden,
    /// Restarting nfsd failed.
    #[error("restarting nfsd for a grace period: {0}")]
    Restart(String),
    /// File system work failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<NlmError> for OcfError {
    fn from(e: NlmError) -> Self {
        use NlmError::*;
        let status = match &e {
            NoKmod | NoSmNotify => Status::Installed,
            FsidElsewhere { .. } => Status::Configured,
            Kmod(k) if k.is_installation() => Status::Installed,
            Kmod(k) if k.is_permission() => Status::Perm,
            // Listed one by one, so that a new variant must choose its class.
            Kmod(_)
            | FstypeName(_)
            | NoNfsd(_)
            | NotMounted(_)
            | OtherFilesystem { .. }
            | Control { .. }
            | Remaining { .. }
            | V4Kept { .. }
            | RestartWouldDrop(_)
            | LocksHidden
            | Restart(_)
            | Io { .. } => Status::Generic,
        };
        OcfError::new(status, e.to_string())
    }
}
