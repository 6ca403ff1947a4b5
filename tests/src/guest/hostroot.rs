//! `handoff.root=host`: the guest's root becomes the host's root filesystem,
//! shared read-only by qemu over 9p: a tmpfs whose top-level directories
//! are the host's, each under a writable tmpfs overlay, with the guest's own
//! /proc, /sys, /dev, /run, /tmp and /handoff moved in. The Pacemaker
//! scenarios then run the host's own Pacemaker, corosync, pcs and nfs-utils
//! on Debian's kernel with a real nfsd, as virtme does for kernel tests.
//!
//! The root itself is the tmpfs, not an overlay: NFSv4 clients look an
//! export's path up from nfsd's pseudo root, "/", and nfsd cannot make file
//! handles on an overlay over 9p.

use std::path::Path;

use nix::mount::{mount, MsFlags};

fn mkdir(p: &str) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {p}: {e}"))
}

fn mnt(
    src: &str,
    dst: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), String> {
    mount(Some(src), dst, fstype, flags, data).map_err(|e| format!("mount {src} on {dst}: {e}"))
}

/// Switch this process (PID 1) to the host's root; its children follow.
pub fn enter() -> Result<(), String> {
    mkdir("/host")?;
    mnt(
        "hostroot",
        "/host",
        Some("9p"),
        MsFlags::MS_RDONLY,
        Some("trans=virtio,version=9p2000.L,msize=512000,cache=loose"),
    )?;
    mkdir("/overlay")?;
    mnt(
        "tmpfs",
        "/overlay",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )?;
    mkdir("/newroot")?;
    mnt(
        "tmpfs",
        "/newroot",
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )?;
    // What the guest has of its own, or does not need.
    const OWN: [&str; 12] = [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "srv",
        "mnt",
        "media",
        "handoff",
        "work",
        "farm",
        "lost+found",
    ];
    let entries = std::fs::read_dir("/host").map_err(|e| format!("reading /host: {e}"))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        let target = format!("/newroot/{name}");
        if kind.is_symlink() {
            // bin -> usr/bin and the like, as they are.
            if let Ok(to) = std::fs::read_link(e.path()) {
                std::os::unix::fs::symlink(&to, &target)
                    .map_err(|e| format!("symlink {target}: {e}"))?;
            }
        } else if kind.is_dir() && !OWN.contains(&name.as_str()) {
            let (upper, work) = (
                format!("/overlay/{name}.up"),
                format!("/overlay/{name}.work"),
            );
            for d in [&upper, &work, &target] {
                mkdir(d)?;
            }
            mnt(
                "overlay",
                &target,
                Some("overlay"),
                MsFlags::empty(),
                Some(&format!(
                    "lowerdir=/host/{name},upperdir={upper},workdir={work}"
                )),
            )?;
        }
    }
    for d in ["/newroot/srv", "/newroot/mnt"] {
        mkdir(d)?;
    }
    for d in ["/proc", "/sys", "/dev", "/run", "/tmp"] {
        let target = format!("/newroot{d}");
        mkdir(&target)?;
        mnt(d, &target, None, MsFlags::MS_MOVE, None)?;
    }
    mkdir("/newroot/handoff")?;
    mnt(
        "/handoff",
        "/newroot/handoff",
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    // As switch_root does: the overlay goes on top of the initramfs' root,
    // so that a process entering this mount namespace (setns, nsenter)
    // lands on it too; a plain chroot would leave those on the initramfs.
    nix::unistd::chdir("/newroot").map_err(|e| format!("chdir: {e}"))?;
    mnt(".", "/", None, MsFlags::MS_MOVE, None)?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir: {e}"))?;
    if !Path::new("/usr/sbin/pacemakerd").exists() {
        return Err("the host has no pacemakerd: run ci/deps first".into());
    }
    Ok(())
}
