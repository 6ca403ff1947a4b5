//! mountd's export table (/var/lib/nfs/etab), which exportfs writes and
//! the kernel consults through mountd when a client arrives. The kernel's
//! own table (/proc/fs/nfsd/exports) only fills as clients use exports, so
//! it cannot tell whether an export is configured.

use std::path::{Path, PathBuf};

use crate::unescape;
use ocf::ParamValue;

/// The filesystem ID that keeps file handles valid on every node: a number
/// or a UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fsid(pub String);

impl ParamValue for Fsid {
    const PLACEHOLDER: &'static str = "NUMBER|UUID";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let number = raw.parse::<u32>().is_ok_and(|n| n > 0);
        let hex: String = raw.chars().filter(|c| *c != '-').collect();
        let uuid = hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
        if number || uuid {
            Ok(Fsid(raw.to_ascii_lowercase()))
        } else {
            Err("expected a number from 1 to 4294967295 or a UUID, the same on every node (0 is NFSv4's root)".into())
        }
    }
}

impl Fsid {
    /// Whether an fsid as the export table shows it is this one (UUIDs
    /// compare without their dashes and case).
    pub fn matches(&self, shown: &str) -> bool {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| *c != '-')
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        norm(&self.0) == norm(shown)
    }
}

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

/// Parse the table's text.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            // nfs-utils escapes every byte that is not printable ASCII.
            let (path, rest) = line.split_once(|c: char| c.is_ascii_whitespace())?;
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

    proptest::proptest! {
        #[test]
        fn any_text_parses_without_panic(t in proptest::prelude::any::<String>()) {
            let _ = parse(&t);
        }

        #[test]
        fn an_entry_as_exportfs_writes_it_reads_back(
            path in "/\\PC{0,30}",
            client in "[A-Za-z0-9.*/:-]{1,20}",
            options in proptest::collection::vec("[a-z0-9_=]{1,10}", 0..6),
        ) {
            let line = format!(
                "{}\t{client}({})\n",
                String::from_utf8_lossy(&crate::escape(Path::new(&path))),
                options.join(",")
            );
            let want = Entry { path: path.into(), client, options };
            proptest::prop_assert_eq!(parse(&line), vec![want]);
        }
    }
}
