//! The lock table (/proc/locks): the locks held on one filesystem, for NFS
//! clients (owned by lockd) or by local processes.

/// A device number, as /proc/locks and mountinfo give it (the
/// superblock's; btrfs reports another one through stat).
pub type Dev = (u32, u32);

/// Format a device number as /proc/locks does.
pub fn dev_text(d: Dev) -> String {
    format!("{:02x}:{:02x}", d.0, d.1)
}

/// The PIDs of the kernel threads named `name` (lockd's, owners of the
/// locks NFSv3 clients hold; nfsd's, of NFSv4 clients' locks and
/// delegations).
fn threads_named(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect()
}

/// Locks on one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Byte-range locks held for NFSv3 clients (owned by lockd).
    pub nlm: usize,
    /// Byte-range locks held for NFSv4 clients: owned by an nfsd thread,
    /// or by a PID that no longer exists (the thread that took it is gone,
    /// the kernel still holds it).
    pub nfsd: usize,
    /// Byte-range locks shown with PID 0, an owner this PID namespace
    /// cannot see (6.x kernels leave those out instead: [`owners_visible`]).
    pub unseen: usize,
    /// NFSv4 delegations and other leases not held by a local process.
    pub delegations: usize,
    /// Held by local processes.
    pub local: usize,
}

impl Held {
    /// All of them.
    pub fn total(&self) -> usize {
        self.client_locks() + self.delegations + self.local
    }

    /// Byte-range locks the kernel holds for NFS clients (exact only where
    /// [`owners_visible`]).
    pub fn client_locks(&self) -> usize {
        self.nlm + self.nfsd + self.unseen
    }

    /// Who holds them, for a reason line.
    pub fn owners(&self) -> String {
        format!(
            "{} held for NFSv3 clients by lockd, {} for NFSv4 clients by nfsd, {} by owners this PID namespace cannot see, {} delegations, {} by local processes",
            self.nlm, self.nfsd, self.unseen, self.delegations, self.local
        )
    }
}

/// Whether this /proc shows the locks of lockd and nfsd. The kernel leaves
/// out of /proc/locks every lock whose owner is outside the PID namespace
/// that /proc belongs to, and their threads are in the initial one: a node
/// in a PID namespace (Pacemaker in a container) sees none of the locks
/// its clients hold. Kernel threads are visible only from the initial
/// namespace, kthreadd always as PID 2.
pub fn owners_visible() -> bool {
    std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd")
}

/// Who owns a lock, by PID as /proc/locks shows it.
fn owner(pid: Option<i32>, lockd: &[i32], nfsd: &[i32]) -> Owner {
    match pid {
        Some(p) if lockd.contains(&p) => Owner::Lockd,
        Some(p) if nfsd.contains(&p) => Owner::Nfsd,
        // Older kernels showed an owner outside this PID namespace as 0.
        Some(0) => Owner::Unseen,
        // Its owner is gone and the kernel still holds it: nfsd's threads
        // exit at shutdown, their NFSv4 state must not stay.
        Some(p) if p > 0 && !std::path::Path::new(&format!("/proc/{p}")).exists() => Owner::Nfsd,
        // OFD locks (-1) belong to open files, and every other PID is a
        // process of this node.
        _ => Owner::Local,
    }
}

enum Owner {
    Lockd,
    Nfsd,
    Unseen,
    Local,
}

/// The locks held on each of `devs`. Reading the lock table takes the
/// kernel's file-lock semaphore for writing and waits for an RCU grace
/// period: every lock request on the node waits meanwhile (milliseconds
/// on hardware, far more under emulation), so actions call this once, at
/// the point where they must know.
pub fn held_on(devs: &[Dev]) -> Vec<Held> {
    let lockd = threads_named("lockd");
    let nfsd = threads_named("nfsd");
    let mut out = vec![Held::default(); devs.len()];
    for l in procfs::locks().unwrap_or_default() {
        let Some(i) = devs.iter().position(|d| *d == (l.devmaj, l.devmin)) else {
            continue;
        };
        let lease = matches!(l.lock_type.as_str(), "DELEG" | "LEASE");
        let h = &mut out[i];
        match (owner(l.pid, &lockd, &nfsd), lease) {
            (Owner::Local, _) => h.local += 1,
            (_, true) => h.delegations += 1,
            (Owner::Lockd, false) => h.nlm += 1,
            (Owner::Nfsd, false) => h.nfsd += 1,
            (Owner::Unseen, false) => h.unseen += 1,
        }
    }
    out
}
