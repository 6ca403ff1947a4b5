//! The lock table (/proc/locks): the locks held on one filesystem, for NFS
//! clients (owned by lockd) or by local processes.

/// A device number, as /proc/locks and mountinfo give it (the
/// superblock's; btrfs reports another one through stat).
pub type Dev = (u32, u32);

/// Format a device number as /proc/locks does.
pub fn dev_text(d: Dev) -> String {
    format!("{:02x}:{:02x}", d.0, d.1)
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

/// Who owns a lock, by PID as /proc/locks shows it; `comm` names a
/// process (None when there is no such process).
fn owner(pid: Option<i32>, comm: &mut impl FnMut(i32) -> Option<String>) -> Owner {
    match pid {
        // Older kernels showed an owner outside this PID namespace as 0.
        Some(0) => Owner::Unseen,
        Some(p) if p > 0 => match comm(p).as_deref().map(str::trim) {
            Some("lockd") => Owner::Lockd,
            Some("nfsd") => Owner::Nfsd,
            // Its owner is gone and the kernel still holds it: nfsd's
            // threads exit at shutdown, their NFSv4 state must not stay.
            None => Owner::Nfsd,
            Some(_) => Owner::Local,
        },
        // OFD locks (-1) belong to open files.
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
///
/// Owners are named by /proc/PID/comm of the locks on `devs` only, so the
/// cost does not grow with the node's processes (each virtual server adds
/// its daemons and nfsd threads).
pub fn held_on(devs: &[Dev]) -> Vec<Held> {
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    count(procfs::locks().unwrap_or_default(), devs, comm)
}

/// The locks of a lock table on each of `devs`, by owner.
fn count(
    table: Vec<procfs::Lock>,
    devs: &[Dev],
    comm: impl FnMut(i32) -> Option<String>,
) -> Vec<Held> {
    // A process holding many locks is looked up once.
    let mut seen: std::collections::HashMap<i32, Option<String>> = Default::default();
    let mut comm = comm;
    let mut named = |pid: i32| seen.entry(pid).or_insert_with(|| comm(pid)).clone();
    let mut out = vec![Held::default(); devs.len()];
    for l in table {
        let Some(i) = devs.iter().position(|d| *d == (l.devmaj, l.devmin)) else {
            continue;
        };
        let lease = matches!(l.lock_type.as_str(), "DELEG" | "LEASE");
        let h = &mut out[i];
        match (owner(l.pid, &mut named), lease) {
            (Owner::Local, _) => h.local += 1,
            (_, true) => h.delegations += 1,
            (Owner::Lockd, false) => h.nlm += 1,
            (Owner::Nfsd, false) => h.nfsd += 1,
            (Owner::Unseen, false) => h.unseen += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead;
    use proptest::prelude::*;

    fn table(text: &[u8]) -> Vec<procfs::Lock> {
        procfs::Locks::from_read(text)
            .map(|l| l.0)
            .unwrap_or_default()
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = count(table(&b), &[(8, 1)], |_| None);
        }

        // Each generated line is one lock of a known owner on one of two
        // devices: the counts come out per device and owner.
        #[test]
        fn every_lock_is_counted_once_by_owner(
            locks in proptest::collection::vec((0usize..5, any::<bool>(), 1u64..1_000_000), 0..30),
        ) {
            let (lockd, nfsd, local) = (900, 901, std::process::id() as i32);
            let devs = [(8, 1), (253, 7)];
            let mut text = String::new();
            let mut want = vec![Held::default(), Held::default()];
            for (n, (who, on_second, inode)) in locks.iter().enumerate() {
                let d = usize::from(*on_second);
                let (class, kind, pid) = match who {
                    0 => ("POSIX", "ADVISORY", lockd),
                    1 => ("POSIX", "ADVISORY", nfsd),
                    2 => ("DELEG", "ACTIVE", nfsd),
                    3 => ("POSIX", "ADVISORY", 0),
                    _ => ("FLOCK", "ADVISORY", local),
                };
                match who {
                    0 => want[d].nlm += 1,
                    1 => want[d].nfsd += 1,
                    2 => want[d].delegations += 1,
                    3 => want[d].unseen += 1,
                    _ => want[d].local += 1,
                }
                let (maj, min) = devs[d];
                text.push_str(&format!(
                    "{}: {class}  {kind}  WRITE {pid} {maj:02x}:{min:02x}:{inode} 0 EOF\n",
                    n + 1
                ));
            }
            let comm = |pid: i32| match pid {
                p if p == lockd => Some("lockd\n".to_owned()),
                p if p == nfsd => Some("nfsd\n".to_owned()),
                p if p == local => Some("tester\n".to_owned()),
                _ => None,
            };
            prop_assert_eq!(count(table(text.as_bytes()), &devs, comm), want);
        }
    }
}
