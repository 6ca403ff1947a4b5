//! Reads the few superblock fields the agent needs (type, UUID, label) for
//! the filesystems it manages: ext2/3/4, xfs and btrfs.
//!
//! libblkid does this for every filesystem, but its Rust bindings need
//! bindgen and libclang at build time; three fixed-offset layouts are
//! smaller than that dependency.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a superblock says about its filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Kernel filesystem type name.
    pub fstype: &'static str,
    /// UUID in the usual 8-4-4-4-12 lowercase form.
    pub uuid: String,
    /// Volume label; empty when unset.
    pub label: String,
}

const EXT_OFFSET: u64 = 1024;
const BTRFS_OFFSET: u64 = 0x10000;

/// Read the superblock of a device or image; `Ok(None)` when none of the
/// known filesystems is on it.
pub fn probe(path: &Path) -> io::Result<Option<Superblock>> {
    let f = File::open(path)?;
    let mut head = [0u8; 2048];
    let n = read_at_most(&f, &mut head, 0)?;
    let head = &head[..n];
    if let Some(sb) = parse_xfs(head).or_else(|| parse_ext(head)) {
        return Ok(Some(sb));
    }
    let mut btrfs = [0u8; 4096];
    let n = read_at_most(&f, &mut btrfs, BTRFS_OFFSET)?;
    Ok(parse_btrfs(&btrfs[..n]))
}

fn read_at_most(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn uuid(b: &[u8]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

fn label(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim_end().to_owned()
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// ext2/3/4: the superblock is 1024 bytes into the device.
fn parse_ext(head: &[u8]) -> Option<Superblock> {
    let sb = head.get(EXT_OFFSET as usize..EXT_OFFSET as usize + 1024)?;
    if le16(sb, 0x38) != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 0x5C);
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
    const HAS_JOURNAL: u32 = 0x4;
    // Features ext3 lacks (extents, 64bit, flex_bg, mmp, ... in incompat;
    // huge_file, gdt_csum, dir_nlink, extra_isize, metadata_csum ... in
    // ro_compat): their presence makes it ext4, as libblkid decides.
    const EXT3_INCOMPAT: u32 = 0x0002 | 0x0004 | 0x0010; // filetype, recover, meta_bg
    const EXT3_RO_COMPAT: u32 = 0x0001 | 0x0002 | 0x0004; // sparse_super, large_file, btree_dir
    let fstype = if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        "ext4"
    } else if compat & HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Superblock {
        fstype,
        uuid: uuid(&sb[0x68..0x78]),
        label: label(&sb[0x78..0x88]),
    })
}

/// xfs: "XFSB" at the start of the device.
fn parse_xfs(head: &[u8]) -> Option<Superblock> {
    if head.get(0..4)? != b"XFSB" {
        return None;
    }
    Some(Superblock {
        fstype: "xfs",
        uuid: uuid(head.get(32..48)?),
        label: label(head.get(108..120)?),
    })
}

/// btrfs: the primary superblock is 64 KiB into the device.
fn parse_btrfs(sb: &[u8]) -> Option<Superblock> {
    if sb.get(0x40..0x48)? != b"_BHRfS_M" {
        return None;
    }
    Some(Superblock {
        fstype: "btrfs",
        uuid: uuid(sb.get(0x20..0x30)?),
        label: label(sb.get(0x12b..0x22b)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [
        0x3e, 0x6b, 0xe9, 0xde, 0x81, 0x39, 0x4a, 0x84, 0xb0, 0xb4, 0xb8, 0xd6, 0xe1, 0xa8, 0x4f,
        0x44,
    ];
    const ID_TEXT: &str = "3e6be9de-8139-4a84-b0b4-b8d6e1a84f44";

    fn ext(compat: u32, incompat: u32, ro: u32) -> Vec<u8> {
        let mut d = vec![0u8; 2048];
        let sb = &mut d[1024..];
        sb[0x38..0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb[0x5C..0x60].copy_from_slice(&compat.to_le_bytes());
        sb[0x60..0x64].copy_from_slice(&incompat.to_le_bytes());
        sb[0x64..0x68].copy_from_slice(&ro.to_le_bytes());
        sb[0x68..0x78].copy_from_slice(&ID);
        sb[0x78..0x7d].copy_from_slice(b"expa\0");
        d
    }

    #[test]
    fn ext_generations() {
        let e2 = parse_ext(&ext(0, 0x2, 0x1)).unwrap();
        assert_eq!(
            (e2.fstype, e2.uuid.as_str(), e2.label.as_str()),
            ("ext2", ID_TEXT, "expa")
        );
        assert_eq!(parse_ext(&ext(0x4, 0x2, 0x3)).unwrap().fstype, "ext3");
        // extents + flex_bg, metadata_csum: ext4
        assert_eq!(
            parse_ext(&ext(0x4, 0x2 | 0x40 | 0x200, 0x3 | 0x400))
                .unwrap()
                .fstype,
            "ext4"
        );
        assert_eq!(parse_ext(&vec![0u8; 2048]), None);
        assert_eq!(parse_ext(&[0u8; 100]), None);
    }

    #[test]
    fn xfs_fields() {
        let mut d = vec![0u8; 2048];
        d[0..4].copy_from_slice(b"XFSB");
        d[32..48].copy_from_slice(&ID);
        d[108..120].copy_from_slice(b"twelve_chars");
        let sb = parse_xfs(&d).unwrap();
        assert_eq!(
            (sb.fstype, sb.uuid.as_str(), sb.label.as_str()),
            ("xfs", ID_TEXT, "twelve_chars")
        );
    }

    #[test]
    fn btrfs_fields() {
        let mut d = vec![0u8; 4096];
        d[0x40..0x48].copy_from_slice(b"_BHRfS_M");
        d[0x20..0x30].copy_from_slice(&ID);
        d[0x12b..0x12e].copy_from_slice(b"bt\0");
        let sb = parse_btrfs(&d).unwrap();
        assert_eq!(
            (sb.fstype, sb.uuid.as_str(), sb.label.as_str()),
            ("btrfs", ID_TEXT, "bt")
        );
        assert_eq!(parse_btrfs(&d[..100]), None);
    }
}
