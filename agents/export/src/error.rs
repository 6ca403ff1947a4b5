//! What can go wrong, with the OCF exit code each failure maps to.

use std::path::PathBuf;

use ocf::{OcfError, Status};

/// A failure of an export action.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// nfs-utils is missing.
    #[error("exportfs is not installed (nfs-kernel-server)")]
    NoExportfs,
    /// The directory exists but is something else.
    #[error("directory {0} exists and is not a directory")]
    NotADirectory(PathBuf),
    /// The virtual server's namespaces cannot be entered.
    #[error(transparent)]
    Server(#[from] vserver::EnterError),
    /// The directory is missing.
    #[error("directory {0} does not exist on this node; start the group's filesystem first")]
    NoDirectory(PathBuf),
    /// The directory is not a mount point.
    #[error("{0} is not a mount point: its filesystem is not mounted (order the export after the group's fs resource, or set allow_non_mountpoint=true)")]
    NotMounted(PathBuf),
    /// Another export of the directory uses another fsid.
    #[error("{dir} is already exported to {client} with fsid={other}; two fsids for one filesystem break clients' file handles")]
    FsidConflict {
        dir: PathBuf,
        client: String,
        other: String,
    },
    /// Another directory uses this fsid.
    #[error("fsid={fsid} is already used by the export of {other}; each exported filesystem needs its own fsid")]
    FsidTaken { fsid: String, other: PathBuf },
    /// exportfs failed.
    #[error("exportfs {args} failed ({code}): {stderr}")]
    Exportfs {
        args: String,
        code: String,
        stderr: String,
    },
    /// Reading or writing a table failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Some clients are exported, some not.
    #[error("{dir} is exported to {present} but not to {missing}")]
    Partial {
        dir: PathBuf,
        present: String,
        missing: String,
    },
    /// The export exists with another fsid.
    #[error("{dir} is exported with fsid={found}, expected fsid={expected}")]
    WrongFsid {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    /// Still exported after stop.
    #[error("{dir} is still exported to {clients} after exportfs -u")]
    StillExported { dir: PathBuf, clients: String },
}

impl From<ExportError> for OcfError {
    fn from(e: ExportError) -> Self {
        use ExportError::*;
        let status = match &e {
            NoExportfs => Status::Installed,
            NotADirectory(_) => Status::Args,
            // Listed one by one, so that a new variant must choose its class.
            Server(_)
            | NoDirectory(_)
            | NotMounted(_)
            | FsidConflict { .. }
            | FsidTaken { .. }
            | Exportfs { .. }
            | Io { .. }
            | Partial { .. }
            | WrongFsid { .. }
            | StillExported { .. } => Status::Generic,
        };
        OcfError::new(status, e.to_string())
    }
}
