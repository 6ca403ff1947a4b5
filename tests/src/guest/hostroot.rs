//! `handoff.root=host`: the guest's root becomes the host's root filesystem,
//! shared read-only by qemu over 9p, under a writable tmpfs overlay, with the
//! guest's own /proc, /sys, /dev, /run, /tmp and /handoff moved in. The
//! Pacemaker scenarios then run the host's own Pacemaker, corosync, pcs and
//! nfs-utils on Debian's kernel with a real nfsd, as virtme does for kernel
//! tests.

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
    for d in ["/overlay/upper", "/overlay/work", "/newroot"] {
        mkdir(d)?;
    }
    mnt(
        "overlay",
        "/newroot",
        Some("overlay"),
        MsFlags::empty(),
        Some("lowerdir=/host,upperdir=/overlay/upper,workdir=/overlay/work"),
    )?;
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
