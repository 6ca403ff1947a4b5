//! State files under `HA_RSCTMP`: created 0600, never through a symlink,
//! replaced atomically (write, rename) so that an agent killed at any
//! point leaves the old or the new content. They are not fsynced:
//! `HA_RSCTMP` is a tmpfs emptied at boot, so durability would buy nothing
//! and cost a disk flush on every start.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// One state file of one resource instance.
#[derive(Clone, Debug)]
pub struct StateFile {
    dir: PathBuf,
    name: String,
}

impl StateFile {
    /// `<provider>-<agent>-<instance>.<kind>` in `dir`.
    pub fn new(dir: &Path, provider: &str, agent: &str, instance: &str, kind: &str) -> Self {
        let safe: String = instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            dir: dir.to_owned(),
            name: format!("{provider}-{agent}-{safe}.{kind}"),
        }
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Replace the content atomically (temporary file, rename).
    pub fn write(&self, content: &[u8]) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&self.dir)?;
        let tmp = self.dir.join(format!(".{}.tmp", self.name));
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(content)?;
        fs::rename(&tmp, self.path())
    }

    /// The content, or `None` when there is no such file.
    pub fn read(&self) -> io::Result<Option<Vec<u8>>> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.path());
        match f {
            Ok(mut f) => {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remove the file; a missing file is fine.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ocf-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn write_read_remove() {
        let dir = scratch("rw");
        let f = StateFile::new(&dir, "handoff", "fs", "web/fs:0", "params");
        assert_eq!(f.path(), dir.join("handoff-fs-web_fs:0.params"));
        assert_eq!(f.read().unwrap(), None);
        f.write(b"one").unwrap();
        f.write(b"two").unwrap();
        assert_eq!(f.read().unwrap().as_deref(), Some(&b"two"[..]));
        let mode = fs::metadata(f.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        f.remove().unwrap();
        f.remove().unwrap();
        assert_eq!(f.read().unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn never_follows_symlinks() {
        let dir = scratch("link");
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        fs::write(&target, b"secret").unwrap();
        let f = StateFile::new(&dir, "handoff", "fs", "x", "params");
        symlink(&target, f.path()).unwrap();
        assert!(f.read().is_err(), "read must refuse a symlink");
        // Writing replaces the link itself, never the file it points to.
        f.write(b"state").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert!(!fs::symlink_metadata(f.path())
            .unwrap()
            .file_type()
            .is_symlink());
        fs::remove_dir_all(dir).unwrap();
    }
}
