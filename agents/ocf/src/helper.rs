//! Detached helpers: work an action starts but must not wait for (sending
//! reboot notifications once a virtual IP is up, ending a grace period).
//! A helper is the agent's own binary run as `<agent> <flag> ARGS...` in
//! its own process group, so that Pacemaker's executor, which kills an
//! action's process group on timeout, leaves it alone; its PID is kept in
//! a state file so that stop can end it.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::state::StateFile;

/// Start `/proc/self/exe <flag> args...` detached; its PID goes to `pid_file`.
pub fn spawn<I, S>(flag: &str, args: I, pid_file: &StateFile) -> std::io::Result<u32>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let child = Command::new("/proc/self/exe")
        .arg(flag)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    pid_file.write(child.id().to_string().as_bytes())?;
    Ok(child.id())
}

/// The PID in `pid_file` if that process is still a `flag` helper (a PID
/// reused by another program is not ours to signal).
pub fn running(flag: &str, pid_file: &StateFile) -> Option<i32> {
    let pid = pid_file
        .read()
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<i32>().ok())?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (cmdline.split(|&b| b == 0).nth(1) == Some(flag.as_bytes())).then_some(pid)
}

/// End a helper that is still running and forget it; its PID if it ran.
pub fn stop(flag: &str, pid_file: &StateFile) -> Option<i32> {
    let pid = running(flag, pid_file);
    if let Some(pid) = pid {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let _ = pid_file.remove();
    pid
}

/// In `main`, before `ocf::main`: when this process was started as the
/// `flag` helper, run `helper` with the remaining arguments and exit with
/// its code.
pub fn dispatch(flag: &str, helper: fn(&[String]) -> i32) {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.get(1).is_some_and(|a| a == flag) {
        std::process::exit(helper(&args[2..]));
    }
}
