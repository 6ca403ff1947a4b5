//! Finds the processes that keep a mount busy, from /proc: working
//! directory, root, executable, open files and memory maps.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, StatxFlags, CWD};

use crate::params::ForceUnmount;

/// A process using the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Process ID.
    pub pid: i32,
    /// Its command name.
    pub comm: String,
    /// How it uses the mount: cwd, root, exe, fd or mmap.
    pub how: &'static str,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.pid, self.comm, self.how)
    }
}

/// Decides whether a /proc link points into the mount.
enum Matcher<'a> {
    /// By mount ID through statx (never syncs with the filesystem).
    MountId(u64),
    /// By the link's text only; nothing behind the link is touched.
    Prefix(&'a Path),
}

impl Matcher<'_> {
    fn hit(&self, link: &Path) -> bool {
        match self {
            Matcher::MountId(id) => {
                rustix::fs::statx(CWD, link, AtFlags::STATX_DONT_SYNC, StatxFlags::MNT_ID)
                    .is_ok_and(|st| st.stx_mnt_id == *id)
            }
            Matcher::Prefix(dir) => fs::read_link(link).is_ok_and(|target| {
                let target = strip_deleted(&target);
                target == *dir || target.starts_with(dir)
            }),
        }
    }
}

fn strip_deleted(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    PathBuf::from(s.strip_suffix(" (deleted)").unwrap_or(&s))
}

/// The processes using the mount with this ID at this point. `safe` mode
/// reads link names only; `true` mode asks the kernel which mount each
/// link is on, which also sees through bind mounts and renamed paths.
pub fn find(mount_id: i32, point: &Path, mode: ForceUnmount) -> Vec<User> {
    let matcher = match mode {
        ForceUnmount::Safe => Matcher::Prefix(point),
        _ => Matcher::MountId(mount_id as u64),
    };
    let me = std::process::id() as i32;
    let Ok(procs) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut found = BTreeMap::new();
    for p in procs.flatten() {
        if p.pid == me {
            continue;
        }
        let base = PathBuf::from(format!("/proc/{}", p.pid));
        let how = uses(&base, &matcher);
        if let Some(how) = how {
            let comm = fs::read_to_string(base.join("comm"))
                .map(|c| c.trim().to_owned())
                .unwrap_or_default();
            found.insert(
                p.pid,
                User {
                    pid: p.pid,
                    comm,
                    how,
                },
            );
        }
    }
    found.into_values().collect()
}

fn uses(base: &Path, m: &Matcher) -> Option<&'static str> {
    for (link, how) in [("cwd", "cwd"), ("root", "root"), ("exe", "exe")] {
        if m.hit(&base.join(link)) {
            return Some(how);
        }
    }
    for (dir, how) in [("fd", "fd"), ("map_files", "mmap")] {
        let Ok(entries) = fs::read_dir(base.join(dir)) else {
            continue;
        };
        if entries.flatten().any(|e| m.hit(&e.path())) {
            return Some(how);
        }
    }
    None
}
