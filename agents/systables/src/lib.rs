//! The system tables handoff's agents read, parsed once for all of them:
//! the mount table of this mount namespace and mountd's export table.

pub mod etab;
pub mod locks;
pub mod mountinfo;

use std::path::{Path, PathBuf};

/// Whether `dir`, as a path lookup sees it, is the root of a mount. The
/// mount table cannot tell: it also lists mounts that a later mount on a
/// parent directory covers (a node's fresh /run over the host's).
pub fn is_mount_point(dir: &Path) -> bool {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    statx(CWD, dir, AtFlags::STATX_DONT_SYNC, StatxFlags::BASIC_STATS)
        .is_ok_and(|st| st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT))
}

/// A system program (nfs-utils', rpcbind, fsck) in /usr/sbin or, on a
/// system without merged /usr, /sbin.
pub fn sbin(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// Undo the `\ooo` octal escapes the kernel (mountinfo) and nfs-utils
/// (etab) write for space, tab, newline and backslash in paths.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/srv/a\040b"), "/srv/a b");
        assert_eq!(unescape(r"/srv/x\134y"), r"/srv/x\y");
        assert_eq!(unescape(r"/srv/tail\04"), r"/srv/tail\04");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
