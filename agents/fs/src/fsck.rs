//! Checking a filesystem before mounting it, with the system's fsck.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ocf::{Deadline, Logger};

use crate::error::FsError;
use crate::params::RunFsck;

/// Filesystems that recover from their journal at mount, so that `auto`
/// does not check them (the list ocf:heartbeat:Filesystem uses).
const SELF_RECOVERING: &[&str] = &[
    "ext3", "ext4", "ext4dev", "xfs", "btrfs", "jfs", "reiserfs", "vfat", "fat", "f2fs",
];

/// Whether start runs fsck for this type.
pub fn needed(mode: RunFsck, fstype: &str) -> bool {
    match mode {
        RunFsck::Force => true,
        RunFsck::No => false,
        RunFsck::Auto => !SELF_RECOVERING.contains(&fstype),
    }
}

/// The fsck binary, if installed.
pub fn binary() -> Option<PathBuf> {
    systables::sbin("fsck")
}

/// Run `fsck -t TYPE -p [-f] DEVICE` within the deadline. Exit codes
/// below 4 mean clean or corrected.
pub fn run(
    device: &Path,
    fstype: &str,
    force: bool,
    deadline: &Deadline,
    log: &Logger,
) -> Result<(), FsError> {
    let bin = binary().ok_or(FsError::FsckMissing)?;
    log.info(format!(
        "checking {} with fsck -t {fstype} -p{}",
        device.display(),
        if force { " -f" } else { "" }
    ));
    let mut cmd = Command::new(bin);
    cmd.args(["-t", fstype, "-p"]);
    // -p alone skips a filesystem marked clean; force means check anyway.
    if force {
        cmd.arg("-f");
    }
    cmd.arg(device)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory of the parent; it makes fsck stop if the agent is killed
    // mid-start, so a later start never meets a stray fsck.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(FsError::FsckSpawn)?;
    // Drain both pipes so a chatty fsck never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait().map_err(FsError::FsckSpawn)? {
            Some(status) => break status,
            None if deadline.expired() => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FsError::FsckTimeout(device.to_owned()));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let output = format!(
        "{} {}",
        out.join().unwrap_or_default().trim(),
        err.join().unwrap_or_default().trim()
    )
    .trim()
    .to_owned();
    // A signal-killed fsck reports no code: treat it as an operational error.
    let code = status.code().unwrap_or(8);
    if code >= 4 {
        let tail: String = output
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(FsError::FsckFailed {
            device: device.to_owned(),
            code,
            output: tail,
        });
    }
    if code > 0 {
        log.warn(format!(
            "fsck corrected errors on {} (exit {code}): {output}",
            device.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_checks_only_unjournaled() {
        assert!(needed(RunFsck::Auto, "ext2"));
        assert!(!needed(RunFsck::Auto, "ext4"));
        assert!(!needed(RunFsck::Auto, "xfs"));
        assert!(needed(RunFsck::Force, "xfs"));
        assert!(!needed(RunFsck::No, "ext2"));
    }
}
