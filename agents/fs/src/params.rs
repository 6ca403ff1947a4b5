//! The parameters of ocf:handoff:fs, named as ocf:heartbeat:Filesystem names
//! them so that a configuration moves over unchanged.

use ocf::{AbsPath, ParamValue, Params, Time};

use crate::mount::MountOptions;

/// Which filesystem to mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// A device node or a symlink to one (/dev/sdb1, /dev/disk/by-id/...).
    Path(AbsPath),
    /// The filesystem UUID (`UUID=...`, or mount's `-U ...`).
    Uuid(String),
    /// The filesystem label (`LABEL=...`, or mount's `-L ...`).
    Label(String),
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Path(p) => write!(f, "{p}"),
            DeviceSpec::Uuid(u) => write!(f, "UUID={u}"),
            DeviceSpec::Label(l) => write!(f, "LABEL={l}"),
        }
    }
}

impl ParamValue for DeviceSpec {
    const PLACEHOLDER: &'static str = "DEVICE";

    fn parse_value(raw: &str) -> Result<Self, String> {
        ocf::param::check_single_line(raw)?;
        let tagged = |prefixes: &[&str]| {
            prefixes
                .iter()
                .find_map(|p| raw.strip_prefix(p))
                .map(str::trim)
        };
        if let Some(uuid) = tagged(&["UUID=", "--uuid=", "--uuid ", "-U"]) {
            let ok = !uuid.is_empty()
                && uuid.len() <= 64
                && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            return if ok {
                Ok(DeviceSpec::Uuid(uuid.to_ascii_lowercase()))
            } else {
                Err("a UUID is hexadecimal digits and dashes, e.g. UUID=3e6be9de-8139-4a84-b0b4-b8d6e1a84f44".into())
            };
        }
        if let Some(label) = tagged(&["LABEL=", "--label=", "--label ", "-L"]) {
            return if label.is_empty() || label.len() > 255 {
                Err("a label is 1 to 255 characters, e.g. LABEL=export_a".into())
            } else {
                Ok(DeviceSpec::Label(label.to_owned()))
            };
        }
        if raw.contains(',') || raw.contains(char::is_whitespace) {
            return Err("a device path has no commas or spaces; give one device".into());
        }
        AbsPath::parse_value(raw)
            .map(DeviceSpec::Path)
            .map_err(|why| {
                format!("{why}; use a path like /dev/sdb1, UUID=<uuid> or LABEL=<label>")
            })
    }
}

/// A filesystem type name as the kernel knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsType(pub String);

impl std::fmt::Display for FsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ParamValue for FsType {
    const PLACEHOLDER: &'static str = "FSTYPE";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = raw.len() <= 32
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if ok {
            Ok(FsType(raw.to_owned()))
        } else {
            Err("a filesystem type is a short lowercase name such as ext4, xfs or btrfs".into())
        }
    }
}

/// Where the depth-20 status file goes, relative to the mount point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPrefix(pub String);

impl ParamValue for StatusPrefix {
    const PLACEHOLDER: &'static str = "PREFIX";

    fn parse_value(raw: &str) -> Result<Self, String> {
        ocf::param::check_single_line(raw)?;
        if raw.starts_with('/') || raw.split('/').any(|s| s == "..") {
            return Err(
                "must be relative to the mount point and stay inside it (no leading / or ..)"
                    .into(),
            );
        }
        Ok(StatusPrefix(raw.to_owned()))
    }
}

ocf::choice! {
    /// When to check the filesystem before mounting it.
    pub enum RunFsck { Auto = "auto", Force = "force", No = "no" }
}

ocf::choice! {
    /// What stop does to processes that keep the filesystem busy.
    pub enum ForceUnmount { True = "true", Safe = "safe", False = "false" }
}

/// The parameters of ocf:handoff:fs.
#[derive(Debug, Params)]
pub struct FsParams {
    /// The block device that holds the filesystem: a device path
    /// (/dev/sdb1, /dev/mapper/vg-lv, /dev/disk/by-id/...), UUID=<uuid> or
    /// LABEL=<label> (mount's -U/-L forms are accepted too). UUIDs and labels
    /// are found through /dev/disk/by-uuid and by-label when udev provides
    /// them, else by reading the superblocks of this node's block devices; a
    /// UUID or label found on two devices is refused.
    #[param(short = "Block device (path, UUID= or LABEL=)", unique)]
    pub device: DeviceSpec,

    /// The mount point. It is created (mode 0755, with its parents) when
    /// missing. Start refuses to mount over another filesystem, and refuses
    /// a device that is already mounted elsewhere on this node: mounting a
    /// shared disk twice corrupts it.
    #[param(short = "Mount point", unique)]
    pub directory: AbsPath,

    /// The filesystem type (ext2, ext3, ext4, xfs, btrfs, or another block
    /// filesystem the kernel supports). Left empty, it is read from the
    /// device's superblock.
    #[param(short = "Filesystem type (detected when empty)")]
    pub fstype: Option<FsType>,

    /// Mount options, comma-separated, as for mount -o (e.g.
    /// noatime,data=ordered). Options that would mount something else
    /// (bind, rbind, move, remount, loop, offset, sizelimit) or change
    /// propagation are refused; fstab-only options (defaults, auto, noauto,
    /// nofail, _netdev, user, x-*) are ignored as mount(8) ignores them.
    #[param(short = "Mount options", default = "", reloadable)]
    pub options: MountOptions,

    /// Where the depth-20 monitor writes its status file, relative to the
    /// mount point; a trailing / makes it a directory. The file is named
    /// after the resource instance and the node.
    #[param(
        short = "Status file prefix for depth-20 monitors",
        default = ".handoff_status/",
        reloadable
    )]
    pub statusfile_prefix: StatusPrefix,

    /// Whether start checks the filesystem with fsck -p first: auto checks
    /// only filesystems without a journal (ext2) and lets fsck skip one
    /// marked clean; force always checks (fsck -p -f), no never does. A
    /// check that finds errors it cannot correct fails the start.
    #[param(short = "Run fsck before mounting", default = "auto", reloadable)]
    pub run_fsck: RunFsck,

    /// Give up unmounting after about 6 seconds instead of using the whole
    /// stop timeout.
    #[param(short = "Give up stopping early", default = "no", reloadable)]
    pub fast_stop: bool,

    /// Allow this agent in a clone. A local filesystem mounted on several
    /// nodes at once is corrupted, so clones are refused unless this is set.
    #[param(short = "Allow cloning", default = "false")]
    pub force_clones: bool,

    /// What stop does when the filesystem is busy: true finds the processes
    /// using it (working directory, root, executable, open files, memory
    /// maps), sends SIGTERM, waits signal_delay, then SIGKILL, and retries
    /// within the stop timeout; safe does the same but identifies them from
    /// /proc link names only, never touching the files behind them; false
    /// signals nobody and only retries. A stop that cannot unmount fails; it
    /// never detaches lazily.
    #[param(
        short = "Kill processes that keep it busy",
        default = "true",
        reloadable
    )]
    pub force_unmount: ForceUnmount,

    /// How long processes get after SIGTERM before they get SIGKILL.
    #[param(
        short = "Delay between SIGTERM and SIGKILL",
        default = "3s",
        reloadable
    )]
    pub signal_delay: Time,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_forms() {
        assert_eq!(
            DeviceSpec::parse_value("UUID=3E6BE9DE-8139"),
            Ok(DeviceSpec::Uuid("3e6be9de-8139".into()))
        );
        assert_eq!(
            DeviceSpec::parse_value("-U 3e6be9de"),
            Ok(DeviceSpec::Uuid("3e6be9de".into()))
        );
        assert_eq!(
            DeviceSpec::parse_value("LABEL=export a"),
            Ok(DeviceSpec::Label("export a".into()))
        );
        assert!(matches!(
            DeviceSpec::parse_value("/dev/disk/by-id/x"),
            Ok(DeviceSpec::Path(_))
        ));
        for bad in [
            "sdb1",
            "UUID=zz",
            "UUID=",
            "LABEL=",
            "/dev/a,/dev/b",
            "/dev/a b",
            "/dev/a\n/dev/b",
        ] {
            assert!(DeviceSpec::parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fstype_names() {
        assert!(FsType::parse_value("ext4").is_ok());
        assert!(FsType::parse_value("fuse.sshfs").is_ok());
        for bad in ["EXT4", "ext4,ro", "ext 4", "x\n"] {
            assert!(FsType::parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_prefix_stays_inside() {
        assert!(StatusPrefix::parse_value(".st/").is_ok());
        assert!(StatusPrefix::parse_value("/etc/").is_err());
        assert!(StatusPrefix::parse_value("../x").is_err());
    }

    #[test]
    fn declaration() {
        let names: Vec<&str> = FsParams::SPECS.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "device",
                "directory",
                "fstype",
                "options",
                "statusfile_prefix",
                "run_fsck",
                "fast_stop",
                "force_clones",
                "force_unmount",
                "signal_delay"
            ]
        );
        let device = &FsParams::SPECS[0];
        assert!(device.required && device.unique_group == Some("device"));
        let fsck = &FsParams::SPECS[5];
        assert_eq!(fsck.choices, ["auto", "force", "no"]);
        assert!(!fsck.required && fsck.reloadable);
    }
}
