//! Dropping the NLM locks of one filesystem: through nfsd's proc files
//! (every kernel since 2.6.27) or through the handoff kernel module.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use std::os::fd::AsRawFd;

use crate::error::NlmError;
use crate::kmod::{self, Folocks, Name, Request, Target};
use crate::params::{Backend, KmodRequest};
use systables::mountinfo::Mount;

const UNLOCK_FS: &str = "/proc/fs/nfsd/unlock_filesystem";
const UNLOCK_IP: &str = "/proc/fs/nfsd/unlock_ip";

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

/// Decide the backend and check that it can act: nfsd's control file
/// exists, or the module's device answers in our request version.
pub fn choose(b: Backend) -> Result<Chosen, NlmError> {
    let kmod = Path::new(kmod::DEVICE).exists();
    let chosen = match b {
        Backend::Kmod if !kmod => return Err(NlmError::NoKmod),
        Backend::Kmod => Chosen::Kmod,
        Backend::Auto if kmod => Chosen::Kmod,
        Backend::Auto | Backend::Procfs => Chosen::Procfs,
    };
    match chosen {
        Chosen::Procfs if !Path::new(UNLOCK_FS).exists() => {
            Err(NlmError::NoNfsd(PathBuf::from(UNLOCK_FS)))
        }
        Chosen::Kmod => Folocks::open().map(|_| chosen).map_err(NlmError::from),
        Chosen::Procfs => Ok(chosen),
    }
}

/// Write one value to an nfsd control file; they take one newline-ended
/// line per write and refuse anything else with EINVAL.
fn write(file: &str, value: &[u8]) -> Result<(), NlmError> {
    let mut line = value.to_vec();
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut f| f.write_all(&line))
        .map_err(|source| NlmError::Control {
            file: PathBuf::from(file),
            value: String::from_utf8_lossy(value).into_owned(),
            source,
        })
}

fn fsid_name(fsid: Option<&str>) -> Name<64> {
    // The fsid parameter admits only digits, hex and '-', which fit.
    fsid.and_then(Name::new).unwrap_or(Name::EMPTY)
}

/// Drop every NLM lock on the filesystem `mount`. The caller has checked
/// that it is the one recorded at start: the proc file acts on whatever
/// filesystem holds the path, the module checks it again itself.
pub fn drop_filesystem(
    chosen: Chosen,
    mount: &Mount,
    form: KmodRequest,
    fsid: Option<&str>,
) -> Result<(), NlmError> {
    let dir = mount.point.as_path();
    match chosen {
        // One word: a path with a space would otherwise name another.
        Chosen::Procfs => write(UNLOCK_FS, &systables::escape(dir)),
        Chosen::Kmod => {
            let dev = Folocks::open()?;
            let fsid = fsid_name(fsid);
            match form {
                KmodRequest::Fd => {
                    // O_PATH: pins the mount without opening its root for I/O.
                    let root = open(
                        dir,
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| NlmError::Io {
                        what: "opening",
                        path: dir.to_owned(),
                        source: e.into(),
                    })?;
                    let target = Target::Fd {
                        fd: root.as_raw_fd(),
                        dev: Some(mount.dev),
                    };
                    dev.drop_locks(&Request { target, fsid })?;
                }
                KmodRequest::Devno => {
                    let fstype = Name::new(&mount.fstype)
                        .ok_or_else(|| NlmError::FstypeName(mount.fstype.clone()))?;
                    let target = Target::Devno {
                        dev: mount.dev,
                        fstype,
                    };
                    dev.drop_locks(&Request { target, fsid })?;
                }
            }
            Ok(())
        }
    }
}

/// Drop the locks clients took through server address `ip`.
/// Revoke the NFSv4 state (opens, locks, delegations) that this node's
/// nfsd holds on `mount`'s filesystem. The kernel's only interface for it
/// is unlock_filesystem, which since 6.9 also revokes NFSv4 state (and
/// drops the filesystem's NLM locks, gone already); the clients lose that
/// state: a node-wide server's NFSv4 clients cannot reclaim elsewhere.
pub fn revoke_v4(mount: &Mount) -> Result<(), NlmError> {
    write(UNLOCK_FS, &systables::escape(&mount.point))
}

pub fn drop_ip(chosen: Chosen, ip: IpAddr, fsid: Option<&str>) -> Result<(), NlmError> {
    match chosen {
        Chosen::Procfs => write(UNLOCK_IP, ip.to_string().as_bytes()),
        Chosen::Kmod => {
            let target = Target::Ip {
                addr: ip,
                scope_id: 0,
            };
            Folocks::open()?.drop_locks(&Request {
                target,
                fsid: fsid_name(fsid),
            })?;
            Ok(())
        }
    }
}
