//! Mount options, and the mount(2)/umount2(2) calls.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use ocf::ParamValue;

/// Mount options split the way mount(8) splits them: flags for mount(2),
/// and the rest as the filesystem's data string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// The text as configured.
    pub raw: String,
    /// mount(2) flags.
    pub flags: MsFlags,
    /// Filesystem-specific options, comma-separated.
    pub data: String,
    /// fstab-only options that were dropped.
    pub ignored: Vec<String>,
}

/// Options that would mount something other than the device, or mount it
/// differently than a plain mount.
const REFUSED: &[&str] = &[
    "bind",
    "rbind",
    "move",
    "remount",
    "loop",
    "offset",
    "sizelimit",
    "encryption",
    "shared",
    "rshared",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// fstab options that mount(8) consumes itself.
const USERSPACE: &[&str] = &[
    "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group",
    "comment",
];

fn flag(name: &str) -> Option<(MsFlags, bool)> {
    // (flag, set) — `set` false means the option clears the flag.
    Some(match name {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "dirsync" => (MsFlags::MS_DIRSYNC, true),
        "mand" => (MsFlags::MS_MANDLOCK, true),
        "nomand" => (MsFlags::MS_MANDLOCK, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "atime" => (MsFlags::MS_NOATIME, false),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "diratime" => (MsFlags::MS_NODIRATIME, false),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "nostrictatime" => (MsFlags::MS_STRICTATIME, false),
        "lazytime" => (MsFlags::MS_LAZYTIME, true),
        "nolazytime" => (MsFlags::MS_LAZYTIME, false),
        "silent" => (MsFlags::MS_SILENT, true),
        "loud" => (MsFlags::MS_SILENT, false),
        "iversion" => (MsFlags::MS_I_VERSION, true),
        "noiversion" => (MsFlags::MS_I_VERSION, false),
        _ => return None,
    })
}

impl ParamValue for MountOptions {
    const PLACEHOLDER: &'static str = "OPT[,OPT...]";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        let mut ignored = Vec::new();
        if raw.is_empty() {
            return Ok(Self {
                raw: String::new(),
                flags,
                data: String::new(),
                ignored,
            });
        }
        for item in raw.split(',') {
            if item.is_empty() {
                return Err(
                    "has an empty option (two commas in a row, or a comma at an end)".into(),
                );
            }
            let bad = item.chars().find(|c| {
                !(c.is_ascii_alphanumeric()
                    || matches!(c, '_' | '.' | '+' | '-' | ':' | '=' | '/' | '@'))
            });
            if let Some(c) = bad {
                return Err(format!(
                    "option {item:?} contains {c:?}; options are comma-separated words like noatime or data=ordered"
                ));
            }
            let name = item.split('=').next().unwrap_or(item);
            if REFUSED.contains(&name) || name.starts_with("X-mount.") {
                return Err(format!(
                    "option {name:?} would change what is mounted or how it propagates; ocf:handoff:fs mounts the device itself"
                ));
            }
            if USERSPACE.contains(&name) || name.starts_with("x-") {
                ignored.push(item.to_owned());
                continue;
            }
            match flag(name) {
                Some((f, true)) if !item.contains('=') => flags.insert(f),
                Some((f, false)) if !item.contains('=') => flags.remove(f),
                _ => data.push(item),
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            flags,
            data: data.join(","),
            ignored,
        })
    }
}

/// Mount a block device.
pub fn mount(device: &Path, dir: &Path, fstype: &str, opts: &MountOptions) -> nix::Result<()> {
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    nix::mount::mount(Some(device), dir, Some(fstype), opts.flags, data)
}

/// Change the options of a mounted filesystem.
pub fn remount(dir: &Path, opts: &MountOptions) -> nix::Result<()> {
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    nix::mount::mount(
        None::<&str>,
        dir,
        None::<&str>,
        opts.flags | MsFlags::MS_REMOUNT,
        data,
    )
}

/// Unmount the filesystem mounted at `dir`; never lazily, never through a
/// symlink.
pub fn unmount(dir: &Path) -> nix::Result<()> {
    nix::mount::umount2(dir, MntFlags::UMOUNT_NOFOLLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_and_data() {
        let o =
            MountOptions::parse_value("noatime,data=ordered,ro,nofail,x-systemd.device-timeout=5")
                .unwrap();
        assert!(o.flags.contains(MsFlags::MS_NOATIME | MsFlags::MS_RDONLY));
        assert_eq!(o.data, "data=ordered");
        assert_eq!(o.ignored, ["nofail", "x-systemd.device-timeout=5"]);
        let o = MountOptions::parse_value("ro,rw").unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(
            MountOptions::parse_value("").unwrap().flags,
            MsFlags::empty()
        );
    }

    #[test]
    fn refuses_smuggling() {
        for bad in [
            "ro,bind",
            "rbind",
            "loop=/dev/loop3",
            "remount,rw",
            "ro,,rw",
            ",ro",
            "ro,",
            "ro /dev/sdb /mnt",
            "ro\n/dev/sdb /mnt",
            "context=\"a,b\"",
            "x\\0y",
            "ro;rm",
            "X-mount.mkdir",
            "shared",
        ] {
            assert!(MountOptions::parse_value(bad).is_err(), "{bad:?} accepted");
        }
    }
}
