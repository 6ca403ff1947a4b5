//! The NFS server's grace period on this node (per network namespace),
//! during which lockd accepts reclaims and refuses new locks.

use std::path::Path;

use crate::error::NlmError;

const NLM_END_GRACE: &str = "/proc/fs/lockd/nlm_end_grace";
const THREADS: &str = "/proc/fs/nfsd/threads";

/// Whether lockd is in grace (its end_grace file reads N; lockd's ends
/// in a NUL byte, so only the first byte counts).
pub fn in_grace() -> Option<bool> {
    std::fs::read_to_string(NLM_END_GRACE)
        .ok()
        .map(|s| s.starts_with('N'))
}

/// End lockd's grace period in this namespace (NFSv4's too, where the
/// node's client tracking lets it be cut short).
pub fn end() -> std::io::Result<()> {
    std::fs::write(NLM_END_GRACE, "Y\n")?;
    let _ = std::fs::write("/proc/fs/nfsd/v4_end_grace", "Y\n");
    Ok(())
}

/// nfsd's thread count (0: stopped).
pub fn threads() -> Option<u32> {
    std::fs::read_to_string(THREADS).ok()?.trim().parse().ok()
}

/// Stop and restart nfsd with the same thread count: lockd restarts in this
/// network namespace and opens a fresh grace period. It drops the locks of
/// every export served from this namespace.
pub fn restart_nfsd() -> Result<u32, NlmError> {
    let n = threads().filter(|&n| n > 0).ok_or_else(|| {
        NlmError::Restart("nfsd is not running on this node (threads is 0 or unreadable)".into())
    })?;
    for value in ["0", &n.to_string()] {
        std::fs::write(Path::new(THREADS), value)
            .map_err(|e| NlmError::Restart(format!("writing {value} to {THREADS}: {e}")))?;
    }
    Ok(n)
}
