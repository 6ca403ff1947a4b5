//! The lock table (/proc/locks): the locks held on one filesystem, for NFS
//! clients (owned by lockd) or by local processes.

/// A device number, as /proc/locks and mountinfo give it (the
/// superblock's; btrfs reports another one through stat).
pub type Dev = (u32, u32);

/// Format a device number as /proc/locks does.
pub fn dev_text(d: Dev) -> String {
    format!("{:02x}:{:02x}", d.0, d.1)
}

/// The PIDs of lockd's kernel threads, owners of the locks NFS clients hold.
fn lockd_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "lockd")
        })
        .collect()
}

/// Locks on one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Held for NFS clients (owned by lockd).
    pub nlm: usize,
    /// Held by local processes.
    pub local: usize,
}

impl Held {
    /// All of them.
    pub fn total(&self) -> usize {
        self.nlm + self.local
    }

    /// Who holds them, for a reason line.
    pub fn owners(&self) -> String {
        format!(
            "{} held for NFS clients by lockd, {} by local processes",
            self.nlm, self.local
        )
    }
}

/// The locks held on each of `devs`. Reading the lock table takes the
/// kernel's file-lock semaphore for writing and waits for an RCU grace
/// period: every lock request on the node waits meanwhile (milliseconds
/// on hardware, far more under emulation), so actions call this once, at
/// the point where they must know.
pub fn held_on(devs: &[Dev]) -> Vec<Held> {
    let lockd = lockd_pids();
    let mut out = vec![Held::default(); devs.len()];
    for l in procfs::locks().unwrap_or_default() {
        if let Some(i) = devs.iter().position(|d| *d == (l.devmaj, l.devmin)) {
            if l.pid.is_some_and(|p| lockd.contains(&p)) {
                out[i].nlm += 1;
            } else {
                out[i].local += 1;
            }
        }
    }
    out
}
