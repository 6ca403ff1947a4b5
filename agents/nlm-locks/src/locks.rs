//! Counting the locks held on one filesystem, from /proc/locks.

use std::path::Path;

/// A device number.
pub type Dev = (u32, u32);

/// The device of the filesystem holding `path`.
pub fn device_of(path: &Path) -> std::io::Result<Dev> {
    let st = nix::sys::stat::stat(path)?;
    Ok((libc::major(st.st_dev), libc::minor(st.st_dev)))
}

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

/// The locks held on each of `devs`.
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
