//! Dropping the NLM locks of one filesystem: through nfsd's proc files
//! (every kernel since 2.6.27) or through the handoff kernel module.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::NlmError;
use crate::params::Backend;

const UNLOCK_FS: &str = "/proc/fs/nfsd/unlock_filesystem";
const UNLOCK_IP: &str = "/proc/fs/nfsd/unlock_ip";
/// The handoff kernel module's control device.
pub const FOLOCKS: &str = "/dev/folocks";

/// The backend that acts, once `auto` is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// nfsd's proc files.
    Procfs,
    /// The kernel module.
    Kmod,
}

impl std::fmt::Display for Chosen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Chosen::Procfs => "procfs",
            Chosen::Kmod => "kmod",
        })
    }
}

/// Decide and check the backend.
pub fn choose(b: Backend) -> Result<Chosen, NlmError> {
    let kmod = Path::new(FOLOCKS).exists();
    let chosen = match b {
        Backend::Kmod if !kmod => return Err(NlmError::NoKmod),
        Backend::Kmod => Chosen::Kmod,
        Backend::Auto if kmod => Chosen::Kmod,
        Backend::Auto | Backend::Procfs => Chosen::Procfs,
    };
    if chosen == Chosen::Procfs && !Path::new(UNLOCK_FS).exists() {
        return Err(NlmError::NoNfsd(PathBuf::from(UNLOCK_FS)));
    }
    Ok(chosen)
}

/// Write one value to an nfsd control file; they take one newline-ended
/// line per write and refuse anything else with EINVAL.
fn write(file: &str, value: &str) -> Result<(), NlmError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .map_err(|source| NlmError::Control {
            file: PathBuf::from(file),
            value: value.to_owned(),
            source,
        })
}

/// Drop every NLM lock on the filesystem mounted at `dir`. The caller has
/// checked that `dir` is the mount point of the expected device: the proc
/// file acts on whatever filesystem holds the path.
pub fn drop_filesystem(chosen: Chosen, dir: &Path) -> Result<(), NlmError> {
    match chosen {
        Chosen::Procfs => write(UNLOCK_FS, &dir.to_string_lossy()),
        Chosen::Kmod => Err(NlmError::NoKmod),
    }
}

/// Drop the locks clients took through server address `ip`.
pub fn drop_ip(chosen: Chosen, ip: IpAddr) -> Result<(), NlmError> {
    match chosen {
        Chosen::Procfs => write(UNLOCK_IP, &ip.to_string()),
        Chosen::Kmod => Err(NlmError::NoKmod),
    }
}
