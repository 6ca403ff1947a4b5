//! Whether the running kernel can mount a filesystem type.

use std::fs;

use crate::error::FsError;

/// Check /proc/filesystems, then the module aliases mount(2) would load.
pub fn check_fstype(fstype: &str) -> Result<(), FsError> {
    let table = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    for line in table.lines() {
        let (flags, name) = line.split_once('\t').unwrap_or(("", line));
        if name.trim() == fstype {
            return if flags.trim() == "nodev" {
                Err(FsError::NotBlockFilesystem(fstype.to_owned()))
            } else {
                Ok(())
            };
        }
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let aliases =
        fs::read_to_string(format!("/lib/modules/{release}/modules.alias")).unwrap_or_default();
    let wanted = format!("alias fs-{fstype} ");
    if aliases.lines().any(|l| l.starts_with(&wanted)) {
        Ok(())
    } else {
        Err(FsError::KernelLacks(fstype.to_owned()))
    }
}
