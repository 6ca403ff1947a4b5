//! The kernel side of one virtual server: nfsd (and lockd with it) in the
//! server's network namespace. Start goes through nfsd's netlink family
//! where the kernel has it (netlink.rs), else through rpc.nfsd(8), which
//! creates and registers the listening sockets; everything else is a file
//! of the nfsd filesystem mounted in the server's mount namespace.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::ServerError;
use crate::netlink::{Nfsd, Unusable};
use crate::params::{Version, Versions};

const THREADS: &str = "/proc/fs/nfsd/threads";
const NLM_END_GRACE: &str = "/proc/fs/lockd/nlm_end_grace";
const V4_END_GRACE: &str = "/proc/fs/nfsd/v4_end_grace";
const V4_GRACETIME: &str = "/proc/fs/nfsd/nfsv4gracetime";
const V4_LEASETIME: &str = "/proc/fs/nfsd/nfsv4leasetime";
const V4_CLIENTS: &str = "/proc/fs/nfsd/clients";
const UNLOCK_FS: &str = "/proc/fs/nfsd/unlock_filesystem";
/// The caches whose entries hold paths (and so mounts) of the export.
const CACHES: [&str; 4] = ["nfsd.export", "nfsd.fh", "auth.unix.ip", "auth.unix.gid"];
/// NFS's port.
pub const PORT: u16 = 2049;
/// The longest NFSv4 grace the kernel accepts, in seconds.
const V4_GRACE_MAX: u64 = 3600;

/// How nfsd starts in a server.
pub struct Start<'a> {
    /// Threads.
    pub threads: u64,
    /// Versions served.
    pub versions: &'a Versions,
    /// The grace period the kernel opens, in seconds: long enough for the
    /// rest of the group to start and the clients to reclaim after; the
    /// server's helper ends it earlier.
    pub grace: u64,
    /// NFSv4 lease, in seconds.
    pub lease: u64,
    /// The NFSv4 server scope (clients reclaim only under the same one).
    pub scope: &'a str,
}

/// How nfsd was started, for the log.
#[derive(Debug)]
pub enum Method {
    /// nfsd's generic netlink family.
    Netlink,
    /// rpc.nfsd and the nfsd filesystem (kernels before 6.10), and why.
    RpcNfsd(Unusable),
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Netlink => f.write_str("nfsd's netlink family"),
            Method::RpcNfsd(why) => write!(f, "rpc.nfsd ({why})"),
        }
    }
}

/// nfsd's thread count here (0: stopped; None: no nfsd filesystem).
pub fn threads() -> Option<u32> {
    std::fs::read_to_string(THREADS).ok()?.trim().parse().ok()
}

/// rpc.nfsd's arguments for `versions`.
fn version_args(versions: &Versions) -> Vec<String> {
    // NFSv2 stays off (rpc.nfsd's default; naming it fails on kernels
    // built without it).
    let mut args = Vec::new();
    if !versions.any_v4() {
        args.extend(["--no-nfs-version".into(), "4".into()]);
    }
    for v in Version::ALL {
        if v == Version::V3 || versions.any_v4() {
            let flag = if versions.has(v) {
                "--nfs-version"
            } else {
                "--no-nfs-version"
            };
            args.extend([flag.to_owned(), v.text().to_owned()]);
        }
    }
    args
}

/// Start nfsd (with its lockd) as `s` says, through netlink where the
/// kernel has it. A fresh start opens a grace period in this network
/// namespace only (lockd's length comes from the node-wide setting, see
/// nsm::reclaim::LockdGrace).
pub fn start(s: &Start<'_>) -> Result<Method, String> {
    match Nfsd::open() {
        Ok(mut nl) => start_netlink(&mut nl, s).map(|()| Method::Netlink),
        Err(why) => start_rpc_nfsd(s).map(|()| Method::RpcNfsd(why)),
    }
}

fn start_netlink(nl: &mut Nfsd, s: &Start<'_>) -> Result<(), String> {
    let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    nl.set_versions(s.versions)
        .map_err(|e| format!("setting the versions: {e}"))?;
    let any4 = std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, PORT));
    let any6 = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, PORT));
    // IPv6 may be off in this kernel: then IPv4 alone.
    if nl.set_listeners(&[any4, any6]).is_err() {
        nl.set_listeners(&[any4])
            .map_err(|e| format!("listening on port {PORT}: {e}"))?;
    }
    let times = (u32_of(s.grace.clamp(10, V4_GRACE_MAX)), u32_of(s.lease));
    if let Err(e) = nl.set_threads(u32_of(s.threads), Some(times), s.scope) {
        // Leave no half-made server behind (listeners without threads).
        let _ = nl.set_threads(0, None, s.scope);
        return Err(format!("starting {} threads: {e}", s.threads));
    }
    Ok(())
}

/// The NFSv4 times are this namespace's own and can be set only while
/// nfsd is down; the scope is the host name of the UTS namespace rpc.nfsd
/// runs in (the server's: its name).
fn start_rpc_nfsd(s: &Start<'_>) -> Result<(), String> {
    if Path::new(V4_GRACETIME).exists() {
        let grace = s.grace.clamp(10, V4_GRACE_MAX);
        for (file, value) in [(V4_GRACETIME, grace), (V4_LEASETIME, s.lease)] {
            std::fs::write(file, format!("{value}\n"))
                .map_err(|e| format!("writing {value} to {file}: {e}"))?;
        }
    }
    let bin = systables::sbin("rpc.nfsd").ok_or("rpc.nfsd is not installed")?;
    let out = Command::new(bin)
        .args(version_args(s.versions))
        .arg(s.threads.to_string())
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
/// every lock it holds for clients; NFSv4 state goes with nfsd).
pub fn set_threads(n: u64) -> Result<(), ServerError> {
    std::fs::write(THREADS, format!("{n}\n")).map_err(ServerError::io("writing", THREADS))
}

/// Drop every NLM lock clients hold on the filesystem of `dir` (and, on
/// kernels since 6.9, this namespace's NFSv4 state on it). Debian 12's
/// 6.1 keeps a namespace's NLM locks when its nfsd stops (its
/// nlm_shutdown_hosts_net frees no host's locks, 6.12's does), and their
/// hosts would outlive the namespace; dropped before nfsd stops, the
/// locks and hosts go with it on every kernel.
pub fn unlock_filesystem(dir: &Path) -> Result<(), ServerError> {
    let mut line = systables::escape(dir);
    line.push(b'\n');
    std::fs::write(UNLOCK_FS, line).map_err(ServerError::io("writing", UNLOCK_FS))
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
/// own grace or NFSv4's lasts (each end_grace file reads N until it ends;
/// lockd's answer ends in a NUL byte, so only the first byte counts).
pub fn in_grace() -> Option<bool> {
    let mut known = None;
    for f in [NLM_END_GRACE, V4_END_GRACE] {
        if let Ok(s) = std::fs::read_to_string(f) {
            known = Some(known.unwrap_or(false) || s.starts_with('N'));
        }
    }
    known
}

/// Whether NFSv4's grace is over here (or there is none): with client
/// tracking the kernel ends it itself once every client it knows sent
/// RECLAIM_COMPLETE, and skips it when it knows none.
pub fn v4_grace_ended() -> bool {
    std::fs::read_to_string(V4_END_GRACE).map_or(true, |s| !s.starts_with('N'))
}

/// End this namespace's grace period now: lockd's, and NFSv4's (which
/// holds NLM locks back too). The kernel lets NFSv4's be cut short only
/// with client tracking (EBUSY without): that is the error then.
pub fn end_grace() -> Result<(), ServerError> {
    std::fs::write(NLM_END_GRACE, "Y\n").map_err(ServerError::io("writing", NLM_END_GRACE))?;
    if !v4_grace_ended() {
        std::fs::write(V4_END_GRACE, "Y\n").map_err(ServerError::io("writing", V4_END_GRACE))?;
    }
    Ok(())
}

/// The NFSv4 clients nfsd knows in this namespace (None: no such table).
pub fn v4_clients() -> Option<usize> {
    std::fs::read_dir(V4_CLIENTS).ok().map(|d| {
        d.flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .count()
    })
}

/// Whether the kernel has nfsd (built in, or its module loaded).
pub fn available() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| {
        t.lines()
            .any(|l| l.split_whitespace().last() == Some("nfsd"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::ParamValue;

    fn args(v: &str) -> String {
        version_args(&Versions::parse_value(v).unwrap()).join(" ")
    }

    #[test]
    fn rpc_nfsd_is_told_every_version() {
        assert_eq!(
            args("3,4.1,4.2"),
            "--nfs-version 3 --no-nfs-version 4.0 --nfs-version 4.1 --nfs-version 4.2"
        );
        assert_eq!(args("3"), "--no-nfs-version 4 --nfs-version 3");
        assert_eq!(
            args("4.2"),
            "--no-nfs-version 3 --no-nfs-version 4.0 --no-nfs-version 4.1 --nfs-version 4.2"
        );
    }
}
