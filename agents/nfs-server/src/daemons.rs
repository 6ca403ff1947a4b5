//! The server's user-space daemons (rpcbind, rpc.statd, rpc.mountd,
//! nfsdcld): how
//! each is started inside the server's namespaces, found again, checked
//! and ended. They run in the foreground of their own process group, so
//! their PIDs are the ones spawned and Pacemaker's executor, which kills
//! an action's process group on timeout, never reaches them.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One daemon of a virtual server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// The port mapper: nfsd, lockd, statd and mountd register with it.
    Rpcbind,
    /// NSM: records the clients holding locks, hears their reboots.
    Statd,
    /// The MOUNT protocol and the kernel's export upcalls.
    Mountd,
    /// NFSv4 client tracking: the kernel asks it which clients may
    /// reclaim, and it keeps them in a database on the export.
    Nfsdcld,
}

/// Where the server's rpc_pipefs is mounted (its own /run): the kernel
/// makes nfsdcld's pipe there, in this network namespace's instance.
pub const PIPEFS: &str = "/run/rpc_pipefs";
/// nfsdcld's database directory, on the export (the server's
/// /var/lib/nfs), so that the client list moves with it.
pub const CLD_STORAGE: &str = "/var/lib/nfs/nfsdcld";

impl Daemon {
    /// In start order.
    pub const ALL: [Daemon; 4] = [
        Daemon::Rpcbind,
        Daemon::Statd,
        Daemon::Mountd,
        Daemon::Nfsdcld,
    ];

    /// The program name, as /proc/PID/comm shows it.
    pub fn comm(self) -> &'static str {
        match self {
            Daemon::Rpcbind => "rpcbind",
            Daemon::Statd => "rpc.statd",
            Daemon::Mountd => "rpc.mountd",
            Daemon::Nfsdcld => "nfsdcld",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            // -f: foreground; -w: keep registrations across a restart.
            Daemon::Rpcbind => &["-f", "-w"],
            // The agent's helper sends the notifications once the virtual
            // IP is up; statd itself would send them too early.
            Daemon::Statd => &["-F", "--no-notify"],
            Daemon::Mountd => &["-F"],
            Daemon::Nfsdcld => &["-F", "-p", PIPEFS, "-s", CLD_STORAGE],
        }
    }

    /// Whether the kernel's one lockd thread, shared by every server on
    /// the node, waits for this daemon (upcalls to mountd, SM_MON to statd).
    pub fn lockd_waits_for(self) -> bool {
        matches!(self, Daemon::Statd | Daemon::Mountd)
    }

    /// The installed binary.
    pub fn binary(self) -> Option<PathBuf> {
        systables::sbin(self.comm())
    }

    /// Start it in the current namespaces.
    pub fn spawn(self) -> std::io::Result<u32> {
        let bin = self.binary().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not installed", self.comm()),
            )
        })?;
        let child = Command::new(bin)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(child.id())
    }

    /// Whether `pid`, this daemon, does its job: listens (or, for nfsdcld,
    /// which has no socket, waits for the kernel's pipe or has it open).
    pub fn serving(self, pid: i32, sockets: &Sockets) -> bool {
        match self {
            Daemon::Nfsdcld => fd_targets(pid)
                .iter()
                .any(|t| t == "anon_inode:inotify" || t.ends_with("/nfsd/cld")),
            _ => sockets.serves(pid),
        }
    }
}

/// Give `pid` the nice value `nice`.
pub fn renice(pid: i32, nice: i32) -> std::io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::process::setpriority_process(Some(pid), nice).map_err(std::io::Error::from)
}

/// Whether nfsdcld (`pid`) has the kernel's pipe open: nfsd started with
/// it as its NFSv4 client tracker.
pub fn tracking(pid: i32) -> bool {
    fd_targets(pid).iter().any(|t| t.ends_with("/nfsd/cld"))
}

/// Where `pid`'s file descriptors point.
fn fd_targets(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect()
}

/// The namespaces a process belongs to, by inode.
fn ns_inode(pid: i32, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The server's namespaces, by inode, to recognise its processes.
#[derive(Clone, Copy, Debug)]
pub struct Members {
    /// Network namespace inode.
    pub net: Option<u64>,
    /// Mount namespace inode.
    pub mnt: Option<u64>,
}

impl Members {
    /// Whether `pid` runs in the server (its network or mount namespace).
    pub fn contains(&self, pid: i32) -> bool {
        (self.net.is_some() && ns_inode(pid, "net") == self.net)
            || (self.mnt.is_some() && ns_inode(pid, "mnt") == self.mnt)
    }

    /// Every process in the server, found in /proc.
    pub fn all(&self) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let me = std::process::id() as i32;
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me && self.contains(pid))
            .collect()
    }

    /// The PID of `daemon` in the server: `hint` if it still is that
    /// daemon there, else found in /proc.
    pub fn find(&self, daemon: Daemon, hint: Option<i32>) -> Option<i32> {
        let is = |pid: i32| comm(pid).as_deref() == Some(daemon.comm()) && self.contains(pid);
        if let Some(pid) = hint.filter(|&p| is(p)) {
            return Some(pid);
        }
        self.all().into_iter().find(|&p| is(p))
    }
}

/// "PID (name, state, where it waits), ..." for messages.
pub fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|&p| {
            let state = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(") ")?.1.chars().next()?.to_string()))
                .unwrap_or_default();
            let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
            format!(
                "{p} ({} {state} {wchan})",
                comm(p).unwrap_or_else(|| "?".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `pid` still exists (a zombie counts as gone).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// Send SIGTERM to `pids`, wait up to `grace` for them to go, then SIGKILL
/// the rest and wait up to `hard`. Returns those still alive.
pub fn end(pids: &[i32], grace: Duration, hard: Duration) -> Vec<i32> {
    let signal_all = |sig: Signal| {
        for &p in pids {
            let _ = kill(Pid::from_raw(p), sig);
        }
    };
    let wait = |limit: Duration| {
        let until = Instant::now() + limit;
        loop {
            let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
            if left.is_empty() || Instant::now() >= until {
                return left;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    signal_all(Signal::SIGTERM);
    if wait(grace).is_empty() {
        return Vec::new();
    }
    signal_all(Signal::SIGKILL);
    wait(hard)
}

/// Socket inodes that listen (TCP) or are bound (UDP) in the current
/// network namespace, and the TCP listeners' addresses.
pub struct Sockets {
    inodes: HashSet<u64>,
    tcp_listeners: Vec<std::net::SocketAddr>,
}

impl Sockets {
    /// Read /proc/net/{tcp,tcp6,udp,udp6} of this network namespace.
    pub fn read() -> Sockets {
        let mut inodes = HashSet::new();
        let mut tcp_listeners = Vec::new();
        for e in nsm::tickle::tcp_table() {
            if e.state == procfs::net::TcpState::Listen {
                inodes.insert(e.inode);
                tcp_listeners.push(e.local_address);
            }
        }
        for t in [procfs::net::udp(), procfs::net::udp6()]
            .into_iter()
            .flatten()
        {
            for e in t {
                if e.local_address.port() != 0 {
                    inodes.insert(e.inode);
                }
            }
        }
        Sockets {
            inodes,
            tcp_listeners,
        }
    }

    /// Whether `pid` has a listening or bound socket here.
    pub fn serves(&self, pid: i32) -> bool {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| {
                t.to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|i| self.inodes.contains(&i))
            })
        })
    }

    /// Whether a TCP listener on `port` accepts connections to `ip`.
    pub fn tcp_listens(&self, ip: std::net::IpAddr, port: u16) -> bool {
        self.tcp_listeners.iter().any(|a| {
            a.port() == port
                && (a.ip() == ip || (a.ip().is_unspecified() && (a.is_ipv6() || ip.is_ipv4())))
        })
    }
}
