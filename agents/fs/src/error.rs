//! What can go wrong, with the OCF exit code each failure maps to.

use std::path::PathBuf;

use ocf::{OcfError, Status};

/// A failure of an fs action.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The device is not present on this node.
    #[error("device {0} does not exist on this node")]
    DeviceMissing(String),
    /// The device path names something that is not a block device.
    #[error("device {0} is not a block device")]
    NotBlockDevice(PathBuf),
    /// No block device carries this UUID or label.
    #[error("no block device on this node has {spec} (looked at {scanned} devices)")]
    NoSuchFilesystem { spec: String, scanned: usize },
    /// Two devices carry the same UUID or label (a cloned disk, a snapshot).
    #[error("{spec} is on several devices ({devices}); refusing to guess which to mount")]
    Ambiguous { spec: String, devices: String },
    /// Reading the device failed.
    #[error("cannot read {path}: {source}")]
    DeviceRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The device has no filesystem this agent recognises.
    #[error("no ext2/3/4, xfs or btrfs filesystem found on {0}; set fstype, or check that this is the right device")]
    Unrecognised(PathBuf),
    /// The device holds a different filesystem than configured.
    #[error("device {device} holds {found}, but fstype={configured}")]
    TypeMismatch {
        device: PathBuf,
        found: String,
        configured: String,
    },
    /// The kernel cannot mount this type.
    #[error("the kernel has no {0} filesystem (not in /proc/filesystems and no fs-{0} module)")]
    KernelLacks(String),
    /// The type needs no device (tmpfs, nfs...).
    #[error(
        "{0} is not a block-device filesystem; ocf:handoff:fs manages local block filesystems"
    )]
    NotBlockFilesystem(String),
    /// Reading the mount table failed.
    #[error("cannot read the mount table: {0}")]
    MountTable(#[from] std::io::Error),
    /// The mount point exists but is not a directory.
    #[error("directory {0} exists and is not a directory")]
    NotADirectory(PathBuf),
    /// The mount point cannot be created.
    #[error("cannot create the mount point {path}: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another filesystem is mounted at the mount point.
    #[error("{dir} already has {mounted} ({fstype}) mounted on it; refusing to mount over it")]
    DirectoryOccupied {
        dir: PathBuf,
        mounted: String,
        fstype: String,
    },
    /// Filesystems are mounted below the mount point.
    #[error("{under} is mounted inside {dir}; mounting over it would hide it")]
    Submounted { dir: PathBuf, under: PathBuf },
    /// The device is mounted somewhere else on this node.
    #[error(
        "device {device} is already mounted at {at}; mounting a shared disk twice corrupts it"
    )]
    MountedElsewhere { device: PathBuf, at: PathBuf },
    /// The kernel holds the device (mounted in another namespace, used by
    /// device-mapper, md, or a running fsck).
    #[error("device {0} is in use (mounted in another mount namespace, or held by device-mapper, md or a running fsck)")]
    DeviceBusy(PathBuf),
    /// fsck is not installed.
    #[error("run_fsck needs fsck, which is not installed (util-linux)")]
    FsckMissing,
    /// fsck found errors it could not correct.
    #[error(
        "fsck -p {device} exited with {code}: errors left uncorrected; repair by hand ({output})"
    )]
    FsckFailed {
        device: PathBuf,
        code: i32,
        output: String,
    },
    /// fsck ran out of time.
    #[error("fsck of {0} did not finish within the start timeout; raise the start timeout")]
    FsckTimeout(PathBuf),
    /// Running fsck failed.
    #[error("cannot run fsck: {0}")]
    FsckSpawn(std::io::Error),
    /// mount(2) failed.
    #[error("mount {device} on {dir} as {fstype} failed: {errno}{hint}")]
    Mount {
        device: PathBuf,
        dir: PathBuf,
        fstype: String,
        errno: nix::Error,
        hint: &'static str,
    },
    /// The filesystem could not be unmounted in time.
    #[error("cannot unmount {dir}: {why}")]
    Unmount { dir: PathBuf, why: String },
    /// Another filesystem is stacked on top of ours.
    #[error("{mounted} is mounted over {dir}, on top of {device}; unmount it first")]
    Covered {
        dir: PathBuf,
        mounted: String,
        device: String,
    },
    /// The device is mounted somewhere other than the mount point.
    #[error("device {device} is mounted at {at}, not at {dir}")]
    Misplaced {
        device: String,
        at: PathBuf,
        dir: PathBuf,
    },
    /// Mounted from the device, with another type.
    #[error("{dir} is mounted as {found}, expected {expected}")]
    WrongType {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    /// Mounted read-only although the options do not ask for it: the
    /// kernel turned it read-only (errors=remount-ro after an I/O error),
    /// or someone remounted it.
    #[error("{dir} is mounted read-only, but options do not ask for ro (an I/O error remounted it, or it was remounted by hand); the export cannot take writes")]
    ReadOnly { dir: PathBuf },
    /// The depth-10 or depth-20 monitor test failed.
    #[error("{0}")]
    Health(String),
    /// remount for a reload failed.
    #[error("remount of {dir} with options {options:?} failed: {errno}")]
    Remount {
        dir: PathBuf,
        options: String,
        errno: nix::Error,
    },
    /// A local filesystem in a clone.
    #[error("ocf:handoff:fs is configured as a clone; a local filesystem mounted on several nodes is corrupted (set force_clones=true only for filesystems made for that)")]
    Cloned,
    /// The mount point is the root directory.
    #[error("directory=/ would mount over the root filesystem")]
    RootDirectory,
}

impl From<FsError> for OcfError {
    fn from(e: FsError) -> Self {
        use FsError::*;
        let status = match &e {
            DeviceMissing(_) | NoSuchFilesystem { .. } | KernelLacks(_) | FsckMissing => {
                Status::Installed
            }
            NotBlockDevice(_) | Unrecognised(_) | TypeMismatch { .. } | NotADirectory(_) => {
                Status::Args
            }
            NotBlockFilesystem(_) | Cloned | RootDirectory => Status::Configured,
            // Listed one by one, so that a new variant must choose its class.
            Ambiguous { .. }
            | DeviceRead { .. }
            | MountTable(_)
            | Mkdir { .. }
            | DirectoryOccupied { .. }
            | Submounted { .. }
            | MountedElsewhere { .. }
            | DeviceBusy(_)
            | FsckFailed { .. }
            | FsckTimeout(_)
            | FsckSpawn(_)
            | Mount { .. }
            | Unmount { .. }
            | Covered { .. }
            | Misplaced { .. }
            | WrongType { .. }
            | ReadOnly { .. }
            | Health(_)
            | Remount { .. } => Status::Generic,
        };
        OcfError::new(status, e.to_string())
    }
}
