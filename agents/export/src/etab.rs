//! mountd's export table (/var/lib/nfs/etab), which exportfs writes and
//! the kernel consults through mountd when a client arrives. The kernel's
//! own table (/proc/fs/nfsd/exports) only fills as clients use exports, so
//! it cannot tell whether an export is configured.

use std::path::{Path, PathBuf};

/// One export entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The exported path.
    pub path: PathBuf,
    /// The client specification.
    pub client: String,
    /// The options, as exportfs expanded them.
    pub options: Vec<String>,
}

impl Entry {
    /// The value of `fsid=`, if set.
    pub fn fsid(&self) -> Option<&str> {
        self.options.iter().find_map(|o| o.strip_prefix("fsid="))
    }
}

/// Undo the octal escapes nfs-utils writes for unusual characters.
fn unescape(s: &str) -> String {
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

/// Parse the table's text.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(char::is_whitespace)?;
            let rest = rest.trim();
            let (client, opts) = match rest.split_once('(') {
                Some((c, o)) => (c, o.trim_end_matches(')')),
                None => (rest, ""),
            };
            Some(Entry {
                path: PathBuf::from(unescape(path)),
                client: client.to_owned(),
                options: opts
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The table on this node; empty when there is none yet.
pub fn read(file: &Path) -> std::io::Result<Vec<Entry>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exportfs_output() {
        let t = "/srv/a\t192.0.2.0/24(rw,sync,wdelay,no_root_squash,fsid=1,sec=sys)\n/srv/with\\040space\t*.example.com(ro,fsid=2)\n";
        let e = parse(t);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].path, Path::new("/srv/a"));
        assert_eq!(e[0].client, "192.0.2.0/24");
        assert_eq!(e[0].fsid(), Some("1"));
        assert_eq!(e[1].path, Path::new("/srv/with space"));
        assert_eq!(e[1].client, "*.example.com");
    }
}
