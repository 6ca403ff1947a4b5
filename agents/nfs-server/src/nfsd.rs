//! The kernel side of one virtual server: nfsd (and lockd with it) in the
//! server's network namespace, through the nfsd filesystem mounted in its
//! mount namespace. Start goes through rpc.nfsd(8), which creates and
//! registers the listening sockets; everything else is a file.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::daemons::program;
use crate::error::ServerError;

const THREADS: &str = "/proc/fs/nfsd/threads";
const NLM_END_GRACE: &str = "/proc/fs/lockd/nlm_end_grace";
const V4_END_GRACE: &str = "/proc/fs/nfsd/v4_end_grace";
/// The caches whose entries hold paths (and so mounts) of the export.
const CACHES: [&str; 4] = ["nfsd.export", "nfsd.fh", "auth.unix.ip", "auth.unix.gid"];
/// NFS's port.
pub const PORT: u16 = 2049;

/// nfsd's thread count here (0: stopped; None: no nfsd filesystem).
pub fn threads() -> Option<u32> {
    std::fs::read_to_string(THREADS).ok()?.trim().parse().ok()
}

/// Start nfsd (NFSv3, with its lockd) with `threads` threads and the grace
/// and lease times given, in seconds. A fresh start opens a grace period
/// in this network namespace only.
pub fn start(threads: u64, grace: u64, lease: u64) -> Result<(), String> {
    let bin = program("rpc.nfsd").ok_or("rpc.nfsd is not installed")?;
    let out = Command::new(bin)
        .args(["--no-nfs-version", "4", "--grace-time"])
        .arg(grace.to_string())
        .arg("--lease-time")
        .arg(lease.to_string())
        .arg(threads.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run rpc.nfsd: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "rpc.nfsd failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; ")
        ))
    }
}

/// Set the thread count (0 stops nfsd, and lockd of this namespace drops
/// every lock it holds for clients).
pub fn set_threads(n: u64) -> Result<(), ServerError> {
    std::fs::write(THREADS, format!("{n}\n")).map_err(ServerError::io("writing", THREADS))
}

/// Expire every entry of the export caches, so that none keeps the
/// exported filesystem referenced once nfsd is down.
pub fn flush_caches() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for c in CACHES {
        let _ = std::fs::write(format!("/proc/net/rpc/{c}/flush"), format!("{now}\n"));
    }
}

/// Whether this namespace is in grace: lockd refuses new locks while its
/// own grace or NFSv4's lasts (each end_grace file reads N until it ends).
pub fn in_grace() -> Option<bool> {
    let mut known = None;
    for f in [NLM_END_GRACE, V4_END_GRACE] {
        if let Ok(s) = std::fs::read_to_string(f) {
            known = Some(known.unwrap_or(false) || s.trim() == "N");
        }
    }
    known
}

/// End lockd's grace period in this namespace now. NFSv4's, which also
/// holds NLM locks back, ends by itself at the grace time rpc.nfsd set;
/// the kernel lets it be cut short only with NFSv4 client tracking (EBUSY
/// without), so that is tried but not required.
pub fn end_grace() -> Result<(), ServerError> {
    std::fs::write(NLM_END_GRACE, "Y\n").map_err(ServerError::io("writing", NLM_END_GRACE))?;
    if Path::new(V4_END_GRACE).exists() {
        let _ = std::fs::write(V4_END_GRACE, "Y\n");
    }
    Ok(())
}

/// Whether the kernel has nfsd (built in, or its module loaded).
pub fn available() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("nfsd"))
    })
}
