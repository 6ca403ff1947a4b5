//! Finds the block device a `device=` parameter names, and recognises it
//! in the mount table.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::FsError;
use crate::params::DeviceSpec;
use crate::probe::{self, Superblock};
use systables::mountinfo::Mount;

/// A block device node and its device number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The device node (the path given, or the one found by UUID/label).
    pub path: PathBuf,
    /// major:minor.
    pub rdev: (u32, u32),
}

fn split_dev(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}

/// The device at a path (symlinks followed), which must be a block device.
pub fn at_path(path: &Path) -> Result<Device, FsError> {
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FsError::DeviceMissing(path.display().to_string()),
        _ => FsError::DeviceRead {
            path: path.to_owned(),
            source: e,
        },
    })?;
    if !meta.file_type().is_block_device() {
        return Err(FsError::NotBlockDevice(path.to_owned()));
    }
    Ok(Device {
        path: path.to_owned(),
        rdev: split_dev(meta.rdev()),
    })
}

/// The udev symlink for a UUID or label, when udev maintains one.
fn udev_link(spec: &DeviceSpec) -> Option<PathBuf> {
    let link = match spec {
        DeviceSpec::Path(_) => return None,
        DeviceSpec::Uuid(u) => Path::new("/dev/disk/by-uuid").join(u),
        // udev escapes what is not safe in a file name as \xHH.
        DeviceSpec::Label(l) => Path::new("/dev/disk/by-label").join(
            l.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) {
                        c.to_string()
                    } else {
                        format!("\\x{:02x}", c as u32)
                    }
                })
                .collect::<String>(),
        ),
    };
    link.exists().then_some(link)
}

/// Whether a superblock carries the UUID or label of the spec.
pub fn tag_matches(spec: &DeviceSpec, sb: &Superblock) -> bool {
    match spec {
        DeviceSpec::Uuid(u) => sb.uuid.eq_ignore_ascii_case(u),
        DeviceSpec::Label(l) => !sb.label.is_empty() && sb.label == *l,
        DeviceSpec::Path(_) => false,
    }
}

/// Every block device node of this node with a non-zero size.
fn block_devices() -> Vec<Device> {
    let Ok(entries) = fs::read_dir("/sys/class/block") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let sys = entry.path();
        let size: u64 = fs::read_to_string(sys.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 {
            continue;
        }
        let name = fs::read_to_string(sys.join("uevent"))
            .ok()
            .and_then(|u| {
                u.lines()
                    .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_owned))
            })
            .unwrap_or_else(|| entry.file_name().to_string_lossy().replace('!', "/"));
        if let Ok(dev) = at_path(&Path::new("/dev").join(name)) {
            out.push(dev);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Find the device a spec names.
pub fn resolve(spec: &DeviceSpec) -> Result<Device, FsError> {
    if let DeviceSpec::Path(p) = spec {
        return at_path(p);
    }
    if let Some(link) = udev_link(spec) {
        return at_path(&link);
    }
    let candidates = block_devices();
    let scanned = candidates.len();
    let found: Vec<Device> = candidates
        .into_iter()
        .filter(|d| {
            probe::probe(&d.path)
                .ok()
                .flatten()
                .is_some_and(|sb| tag_matches(spec, &sb))
        })
        .collect();
    match found.as_slice() {
        [] => Err(FsError::NoSuchFilesystem {
            spec: spec.to_string(),
            scanned,
        }),
        [one] => Ok(one.clone()),
        _ => Err(FsError::Ambiguous {
            spec: spec.to_string(),
            devices: found
                .iter()
                .map(|d| d.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// How to recognise the configured filesystem among mounts, without
/// scanning devices (monitor and stop must stay cheap and must work when
/// the device node has gone).
#[derive(Clone, Debug)]
pub struct Identity {
    spec: DeviceSpec,
    rdev: Option<(u32, u32)>,
}

impl Identity {
    /// Learn what can be learnt cheaply: the device number of a path, or of
    /// the udev link of a UUID or label.
    pub fn new(spec: &DeviceSpec) -> Self {
        let path = match spec {
            DeviceSpec::Path(p) => Some(p.as_path().to_owned()),
            _ => udev_link(spec),
        };
        let rdev = path.and_then(|p| at_path(&p).ok()).map(|d| d.rdev);
        Self {
            spec: spec.clone(),
            rdev,
        }
    }

    /// An identity whose device was resolved already.
    pub fn resolved(spec: &DeviceSpec, dev: &Device) -> Self {
        Self {
            spec: spec.clone(),
            rdev: Some(dev.rdev),
        }
    }

    /// Whether a mount is of this filesystem.
    pub fn owns(&self, m: &Mount) -> bool {
        let source_rdev = || {
            m.source
                .as_deref()
                .filter(|s| s.starts_with('/'))
                .and_then(|s| at_path(Path::new(s)).ok())
                .map(|d| d.rdev)
        };
        if let Some(rdev) = self.rdev {
            // btrfs reports an anonymous device number; its source names the device.
            return m.dev == rdev || source_rdev() == Some(rdev);
        }
        match &self.spec {
            DeviceSpec::Path(p) => m.source.as_deref() == p.to_str(),
            tag => m
                .source
                .as_deref()
                .filter(|s| s.starts_with("/dev/"))
                .and_then(|s| probe::probe(Path::new(s)).ok().flatten())
                .is_some_and(|sb| tag_matches(tag, &sb)),
        }
    }
}
