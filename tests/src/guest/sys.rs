//! Running programs in the guest, and reading its kernel state.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a program did.
#[derive(Debug, Clone)]
pub struct Done {
    /// Exit code (-1 when killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// How long it ran.
    pub took: Duration,
}

impl Done {
    /// The ocf-exit-reason, if any.
    pub fn reason(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
            .unwrap_or_default()
            .to_owned()
    }

    /// Milliseconds.
    pub fn ms(&self) -> f64 {
        self.took.as_secs_f64() * 1000.0
    }
}

/// Run to completion.
pub fn run(cmd: &mut Command) -> Done {
    let t = Instant::now();
    let out: std::io::Result<Output> = cmd.stdin(Stdio::null()).output();
    let took = t.elapsed();
    match out {
        Ok(o) => Done {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            took,
        },
        Err(e) => Done {
            code: -1,
            stdout: String::new(),
            stderr: format!("cannot run {cmd:?}: {e}"),
            took,
        },
    }
}

/// Run with a time limit: a process stuck on an NFS mount whose server is
/// gone is killed (hard mounts wait killably) and reported as code -2.
pub fn run_for(cmd: &mut Command, limit: Duration) -> Done {
    let t = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Done {
                code: -1,
                stdout: String::new(),
                stderr: format!("cannot run {cmd:?}: {e}"),
                took: t.elapsed(),
            }
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Done {
                    code: -2,
                    stdout: String::new(),
                    stderr: format!("timed out after {limit:?}"),
                    took: t.elapsed(),
                };
            }
        }
    }
    let took = t.elapsed();
    match child.wait_with_output() {
        Ok(o) => Done {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            took,
        },
        Err(e) => Done {
            code: -1,
            stdout: String::new(),
            stderr: e.to_string(),
            took,
        },
    }
}

/// A command from an argument vector.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    c
}

/// Run and panic (failing the scenario) unless it succeeds.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let d = run(&mut cmd(args));
    assert!(
        d.code == 0,
        "{args:?} failed ({}): {} {}",
        d.code,
        d.stdout,
        d.stderr
    );
    d.stdout
}

/// Poll until true or timeout; returns the time it took.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if f() {
            return Some(t.elapsed());
        }
        if t.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The device number of a block device node.
pub fn rdev(dev: &str) -> (u32, u32) {
    let st = nix::sys::stat::stat(Path::new(dev)).expect("stat device");
    (libc::major(st.st_rdev), libc::minor(st.st_rdev))
}

/// Locks on a device in /proc/locks (global), excluding blocked waiters.
pub fn locks_on(dev: (u32, u32)) -> usize {
    procfs::locks()
        .unwrap_or_default()
        .iter()
        .filter(|l| (l.devmaj, l.devmin) == dev)
        .count()
}
