//! Loop devices on sparse image files, formatted with the real mkfs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{run_ok, stdout_ok};

/// An attached loop device; detached when dropped.
pub struct LoopDev {
    /// /dev/loopN.
    pub path: PathBuf,
    /// The backing image.
    pub image: PathBuf,
}

impl LoopDev {
    /// An image of `mb` MiB in `dir`, formatted as `fstype` (None: left
    /// blank), with an optional label, attached to a free loop device.
    pub fn new(dir: &Path, name: &str, mb: u64, fstype: Option<&str>, label: Option<&str>) -> Self {
        let image = dir.join(format!("{name}.img"));
        let f = std::fs::File::create(&image).expect("create image");
        f.set_len(mb << 20).expect("size image");
        drop(f);
        if let Some(t) = fstype {
            mkfs(&image, t, label);
        }
        let out = stdout_ok(
            Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&image),
        );
        Self {
            path: PathBuf::from(out.trim()),
            image,
        }
    }

    /// ext4, 64 MiB.
    pub fn ext4(dir: &Path, name: &str) -> Self {
        Self::new(dir, name, 64, Some("ext4"), None)
    }

    /// xfs, 320 MiB (xfsprogs 6 refuses less than 300 MiB).
    pub fn xfs(dir: &Path, name: &str) -> Self {
        Self::new(dir, name, 320, Some("xfs"), None)
    }

    /// The device path as a string.
    pub fn dev(&self) -> String {
        self.path.display().to_string()
    }

    /// The filesystem UUID as blkid reads it.
    pub fn blkid(&self, tag: &str) -> String {
        stdout_ok(
            Command::new("blkid")
                .args(["-p", "-o", "value", "-s", tag])
                .arg(&self.path),
        )
        .trim()
        .to_owned()
    }
}

/// Format an image or device with the real mkfs.
pub fn mkfs(target: &Path, fstype: &str, label: Option<&str>) {
    let mut cmd = Command::new(format!("mkfs.{fstype}"));
    match fstype {
        "xfs" | "btrfs" => cmd.args(["-q", "-f"]),
        _ => cmd.args(["-q", "-F"]),
    };
    if let Some(l) = label {
        cmd.args(["-L", l]);
    }
    run_ok(cmd.arg(target));
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.path).status();
    }
}
