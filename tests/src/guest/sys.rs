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
    // Read both pipes while it runs: a program that writes more than a
    // pipe holds would otherwise wait for a reader until its time is up.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if t.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                // The readers are left behind: a child of the program may
                // still hold the pipes.
                return Done {
                    code: -2,
                    stdout: String::new(),
                    stderr: format!("timed out after {limit:?}"),
                    took: t.elapsed(),
                };
            }
        }
    };
    let took = t.elapsed();
    Done {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took,
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

/// Locks (byte-range locks and leases, blocked waiters too) on a device
/// in /proc/locks (global).
pub fn locks_on(dev: (u32, u32)) -> usize {
    locks_by_dev().get(&dev).copied().unwrap_or(0)
}

/// Locks of every device, from one read of /proc/locks.
pub fn locks_by_dev() -> std::collections::HashMap<(u32, u32), usize> {
    let mut m = std::collections::HashMap::new();
    for l in procfs::locks().unwrap_or_default() {
        *m.entry((l.devmaj, l.devmin)).or_insert(0) += 1;
    }
    m
}

/// NFSv4 delegations on a device (DELEG entries of /proc/locks).
pub fn delegations_on(dev: (u32, u32)) -> usize {
    procfs::locks()
        .unwrap_or_default()
        .iter()
        .filter(|l| (l.devmaj, l.devmin) == dev && l.lock_type.as_str() == "DELEG")
        .count()
}

/// Byte-range (POSIX) locks on a device: NLM's and NFSv4's.
pub fn posix_locks_on(dev: (u32, u32)) -> usize {
    procfs::locks()
        .unwrap_or_default()
        .iter()
        .filter(|l| (l.devmaj, l.devmin) == dev && l.lock_type.as_str() == "POSIX")
        .count()
}

/// A thread that calls a probe every period until finished, keeping what
/// it collects.
pub struct Sampler<T: Send + 'static = String> {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    job: std::thread::JoinHandle<Vec<T>>,
}

impl<T: Send + 'static> Sampler<T> {
    /// Call `probe` every `period` in a thread, with the samples so far to
    /// add to; it returns false to end the sampling early.
    pub fn every(
        period: Duration,
        mut probe: impl FnMut(&mut Vec<T>) -> bool + Send + 'static,
    ) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let job = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && probe(&mut out) {
                std::thread::sleep(period);
            }
            out
        });
        Sampler { stop, job }
    }

    /// Stop, and the samples taken.
    pub fn finish(self) -> Vec<T> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.job.join().unwrap_or_default()
    }
}

impl Sampler<String> {
    /// Samples, every 100 ms until finished, of the kernel stacks of the
    /// tasks that wait uninterruptibly and of lockd, and of the RPC tasks
    /// in flight: what to look at when another export's client was slowed
    /// during a move.
    pub fn start() -> Self {
        // sunrpc's debugfs lists each RPC client's pending tasks.
        if !Path::new("/sys/kernel/debug/sunrpc").exists() {
            let _ = Command::new("mount")
                .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
                .status();
        }
        Sampler::every(Duration::from_millis(100), |out| {
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let p = e.path();
                let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
                let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
                let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
                if state == Some('D') || comm.trim() == "lockd" {
                    let stack = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
                    let top: Vec<&str> = stack.lines().take(6).collect();
                    out.push(format!(
                        "{now} {} {} {state:?}: {}",
                        p.display(),
                        comm.trim(),
                        top.join(" < ")
                    ));
                }
            }
            out.extend(rpc_tasks().into_iter().map(|t| format!("{now} rpc {t}")));
            true
        })
    }
}

/// The PIDs /proc lists (processes and kernel threads).
pub fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// A task's command name (/proc/PID/comm).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// The tasks named `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    pids()
        .filter(|&p| comm(p).as_deref() == Some(name))
        .collect()
}

/// Field `n` of /proc/PID/stat counted from the state (0), after the
/// command name in parentheses (which may hold spaces): 16 is the nice
/// value.
pub fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(") ")?
            .1
            .split_whitespace()
            .nth(n)?
            .to_owned(),
    )
}

/// The RPC tasks in flight, each with its client's server address and
/// transport state (empty without CONFIG_SUNRPC_DEBUG).
fn rpc_tasks() -> Vec<String> {
    let mut out = Vec::new();
    let dir = Path::new("/sys/kernel/debug/sunrpc/rpc_clnt");
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let tasks = std::fs::read_to_string(e.path().join("tasks")).unwrap_or_default();
        if tasks.trim().is_empty() {
            continue;
        }
        let info = std::fs::read_to_string(e.path().join("xprt/info")).unwrap_or_default();
        let xprt: Vec<&str> = info.lines().map(str::trim).collect();
        for t in tasks.lines() {
            out.push(format!(
                "clnt {} [{}]: {}",
                e.file_name().to_string_lossy(),
                xprt.join(" "),
                t.trim()
            ));
        }
    }
    out
}

/// Write to `out`, until `stop` exists, each task's kernel stack whenever
/// it changes, for the tasks that wait uninterruptibly (an NFS client's
/// calls wait killably, which shows as D), lockd and statd: a compact
/// record of where a pause was spent.
pub fn watch_stacks(out: &Path, stop: &Path) {
    use std::collections::HashMap;
    use std::io::Write;
    let Ok(mut file) = std::fs::File::create(out) else {
        return;
    };
    let mut last: HashMap<String, String> = HashMap::new();
    while !stop.exists() {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let p = e.path();
            let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let comm = comm.trim();
            let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
            let watched = state == Some('D') || ["lockd", "rpc.statd"].contains(&comm);
            if !watched {
                continue;
            }
            let stack = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
            let top: Vec<&str> = stack
                .lines()
                .take(8)
                .map(|l| l.split_once("] ").map_or(l, |(_, f)| f))
                .collect();
            let now_stack = format!("{state:?} {}", top.join(" < "));
            let key = p.display().to_string();
            if last.get(&key) != Some(&now_stack) {
                let _ = writeln!(file, "{now} {key} {comm} {now_stack}");
                last.insert(key, now_stack);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
