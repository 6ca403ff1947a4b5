//! The mount table of this mount namespace (/proc/self/mountinfo, read with
//! procfs), with the octal escapes of paths undone.

use std::path::{Path, PathBuf};

use crate::unescape;

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Mount ID.
    pub id: i32,
    /// The superblock's device number, as /proc/locks shows it. Not always
    /// st_dev: btrfs gives each subvolume its own anonymous st_dev.
    pub dev: (u32, u32),
    /// Where it is mounted.
    pub point: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// The mount source (the device path for block filesystems).
    pub source: Option<String>,
    /// Per-mount options (ro, noatime...).
    pub options: Vec<String>,
    /// Read-only, by this mount's flag or by its superblock's (the kernel
    /// sets the latter after an I/O error with errors=remount-ro).
    pub read_only: bool,
}

/// The mount table of this process's mount namespace, in mount order.
pub fn read() -> std::io::Result<Vec<Mount>> {
    parse(&std::fs::read("/proc/self/mountinfo")?)
}

/// A mount table in mountinfo's format (procfs parses the lines).
pub fn parse(text: &[u8]) -> std::io::Result<Vec<Mount>> {
    use procfs::FromRead;
    let infos = procfs::process::MountInfos::from_read(text)
        .map_err(|e| std::io::Error::other(format!("reading /proc/self/mountinfo: {e}")))?;
    Ok(infos
        .into_iter()
        .map(|m| {
            let (major, minor) = m.majmin.split_once(':').unwrap_or(("0", "0"));
            let read_only =
                m.mount_options.contains_key("ro") || m.super_options.contains_key("ro");
            let mut options: Vec<String> = m.mount_options.into_keys().collect();
            options.sort();
            Mount {
                id: m.mnt_id,
                dev: (major.parse().unwrap_or(0), minor.parse().unwrap_or(0)),
                point: PathBuf::from(unescape(&m.mount_point.to_string_lossy())),
                fstype: m.fs_type,
                source: m.mount_source.map(|s| unescape(&s)),
                options,
                read_only,
            }
        })
        .collect())
}

/// The mounts stacked on a directory, bottom first; the last one is the
/// one a path lookup sees.
pub fn at<'a>(table: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    table.iter().filter(|m| m.point == dir).collect()
}

/// Mounts strictly inside a directory, deepest first.
pub fn under<'a>(table: &'a [Mount], dir: &Path) -> Vec<&'a Mount> {
    let mut v: Vec<&Mount> = table
        .iter()
        .filter(|m| m.point != dir && m.point.starts_with(dir))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.point.components().count()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: i32, point: &str) -> Mount {
        Mount {
            id,
            dev: (7, 0),
            point: point.into(),
            fstype: "ext4".into(),
            source: Some("/dev/loop0".into()),
            options: vec![],
            read_only: false,
        }
    }

    #[test]
    fn stacks_and_submounts() {
        let t = vec![
            m(1, "/"),
            m(2, "/srv/a"),
            m(3, "/srv/a/x"),
            m(4, "/srv/a"),
            m(5, "/srv/a/x/y"),
            m(6, "/srv/ab"),
        ];
        let ids: Vec<i32> = at(&t, Path::new("/srv/a")).iter().map(|m| m.id).collect();
        assert_eq!(ids, [2, 4]);
        let ids: Vec<i32> = under(&t, Path::new("/srv/a"))
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, [5, 3]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = parse(&b);
        }

        #[test]
        fn a_line_as_the_kernel_writes_it_reads_back(
            id in 1i32..100_000,
            dev in (0u32..4096, 0u32..1_048_576),
            point in "/\\PC{0,30}",
            fstype in "[a-z0-9]{1,10}",
            source in "/\\PC{0,20}",
            mut options in proptest::collection::btree_set("[a-z_]{1,10}", 1..5),
        ) {
            let esc = |p: &str| String::from_utf8_lossy(&crate::escape(Path::new(p))).into_owned();
            let opts: Vec<String> = options.iter().cloned().collect();
            let line = format!(
                "{id} 1 {}:{} / {} {} shared:1 - {fstype} {} rw\n",
                dev.0,
                dev.1,
                esc(&point),
                opts.join(","),
                esc(&source)
            );
            let table = parse(line.as_bytes()).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let read_only = options.remove("ro");
            proptest::prop_assert_eq!(table, vec![Mount {
                id,
                dev,
                point: point.into(),
                fstype,
                source: Some(source),
                options: opts,
                read_only,
            }]);
        }
    }
}
