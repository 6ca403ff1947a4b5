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
        // Three octal digits that make a byte (\\400 and above are not
        // escapes, and stay as they are).
        let byte = b.get(i + 1..i + 4).filter(|_| b[i] == b'\\').and_then(|d| {
            let v = d.iter().try_fold(0u16, |v, &c| {
                (b'0'..=b'7')
                    .contains(&c)
                    .then(|| v * 8 + u16::from(c - b'0'))
            })?;
            u8::try_from(v).ok()
        });
        if let Some(byte) = byte {
            out.push(byte);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` as one word of a kernel control file (unlock_filesystem and
/// the like, read with qword_get): space, tab, newline, backslash and
/// other control bytes as `\ooo`, the rest as it is.
pub fn escape(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        if b == b'\\' || b == b' ' || b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_control_file_would_split() {
        assert_eq!(escape(Path::new("/srv/nfs/a-1.x")), b"/srv/nfs/a-1.x");
        assert_eq!(escape(Path::new("/srv/a b")), br"/srv/a\040b");
        assert_eq!(escape(Path::new("/srv/x\\y\tz")), br"/srv/x\134y\011z");
        let odd = "/srv/é \\\n";
        assert_eq!(
            unescape(&String::from_utf8_lossy(&escape(Path::new(odd)))),
            odd
        );
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/srv/a\040b"), "/srv/a b");
        assert_eq!(unescape(r"/srv/x\134y"), r"/srv/x\y");
        assert_eq!(unescape(r"/srv/tail\04"), r"/srv/tail\04");
        assert_eq!(unescape("/plain"), "/plain");
    }

    proptest::proptest! {
        #[test]
        fn unescape_takes_any_text(s in "(\\\\[0-9]{0,3}|.){0,40}") {
            let _ = unescape(&s);
        }

        #[test]
        fn escape_then_unescape_gives_the_path_back(s in proptest::prelude::any::<String>()) {
            let escaped = escape(Path::new(&s));
            proptest::prop_assert!(!escaped.iter().any(|&c| c == b' ' || c == b'\n'));
            proptest::prop_assert_eq!(unescape(&String::from_utf8_lossy(&escaped)), s);
        }
    }
}
