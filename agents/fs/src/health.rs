//! The deeper monitors: depth 10 reads the device, depth 20 writes, syncs
//! and reads back a status file on the filesystem.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::FsError;
use crate::params::StatusPrefix;

const BLOCK: usize = 4096;

/// A block-aligned buffer, as O_DIRECT needs, without unsafe allocation.
struct Aligned {
    buf: Vec<u8>,
    off: usize,
}

impl Aligned {
    fn new() -> Self {
        let buf = vec![0u8; 2 * BLOCK];
        let off = buf.as_ptr().align_offset(BLOCK);
        Self { buf, off }
    }
    fn block(&mut self) -> &mut [u8] {
        &mut self.buf[self.off..self.off + BLOCK]
    }
}

/// Depth 10: read the first block of the device, bypassing the page cache.
pub fn read_test(device: &Path) -> Result<(), FsError> {
    let open = |direct: bool| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(if direct { libc::O_DIRECT } else { 0 })
            .open(device)
    };
    let f = match open(true) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(false),
        other => other,
    }
    .map_err(|e| FsError::Health(format!("read test: cannot open {}: {e}", device.display())))?;
    let mut buf = Aligned::new();
    f.read_exact_at(buf.block(), 0)
        .map_err(|e| FsError::Health(format!("read test: cannot read {}: {e}", device.display())))
}

fn node_name() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.nodename().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "node".to_owned())
}

/// The status file of an instance on this node, relative to the mount point.
pub fn status_file(prefix: &StatusPrefix, instance: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}{}_{}",
        prefix.0,
        instance.replace('/', "_"),
        node_name()
    ))
}

/// Open (creating when asked) each directory of `rel` below `root` without
/// following symlinks: a user who can write to the filesystem must not be
/// able to redirect root's writes.
fn open_parent(root: &Path, rel: &Path, create: bool) -> io::Result<(OwnedFd, std::ffi::OsString)> {
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut fd = nix::fcntl::open(root, dir_flags, Mode::empty())?;
    let mut parts: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let name = parts
        .pop()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty status file name"))?
        .to_owned();
    for part in parts {
        if create {
            match mkdirat(&fd, part, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        fd = openat(&fd, part, dir_flags, Mode::empty())?;
    }
    Ok((fd, name))
}

fn open_status(root: &Path, rel: &Path, write: bool, direct: bool) -> io::Result<File> {
    let (dir, name) = open_parent(root, rel, write)?;
    let mut flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if write {
        flags |= OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_SYNC;
    } else {
        flags |= OFlag::O_RDONLY;
    }
    if direct {
        flags |= OFlag::O_DIRECT;
    }
    Ok(File::from(openat(
        &dir,
        name.as_os_str(),
        flags,
        Mode::from_bits_truncate(0o644),
    )?))
}

/// Depth 20: write a block to the status file with O_DIRECT|O_SYNC, fsync,
/// and read it back from the device.
pub fn write_test(dir: &Path, rel: &Path, instance: &str) -> Result<(), FsError> {
    let fail = |what: &str, e: io::Error| {
        FsError::Health(format!(
            "write test: {what} {}: {e}",
            dir.join(rel).display()
        ))
    };
    let mut direct = true;
    let f = match open_status(dir, rel, true, true) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            direct = false;
            open_status(dir, rel, true, false)
        }
        other => other,
    }
    .map_err(|e| fail("cannot open", e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut out = Aligned::new();
    let text = format!("{instance} {stamp}\n");
    let n = text.len().min(BLOCK);
    out.block()[..n].copy_from_slice(&text.as_bytes()[..n]);
    f.write_all_at(out.block(), 0)
        .map_err(|e| fail("cannot write", e))?;
    f.sync_all().map_err(|e| fail("cannot fsync", e))?;
    drop(f);
    let r = open_status(dir, rel, false, direct).map_err(|e| fail("cannot reopen", e))?;
    let mut back = Aligned::new();
    r.read_exact_at(back.block(), 0)
        .map_err(|e| fail("cannot read back", e))?;
    if back.block() != out.block() {
        return Err(FsError::Health(format!(
            "write test: {} read back different content than was written",
            dir.join(rel).display()
        )));
    }
    Ok(())
}

/// Remove the status file (at stop), ignoring a missing one.
pub fn remove_status(dir: &Path, rel: &Path) -> io::Result<()> {
    let (parent, name) = open_parent(dir, rel, false)?;
    match nix::unistd::unlinkat(
        &parent,
        name.as_os_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
