//! Paths, scratch directories, waiting, running commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// Where the agent binaries are: `HANDOFF_BIN_DIR` (relative to the
/// workspace root), else `target/debug`.
pub fn bin_dir() -> PathBuf {
    std::env::var_os("HANDOFF_BIN_DIR")
        .map(|d| workspace_root().join(d))
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"))
                .join("debug")
        })
}

/// The path of an agent binary; panics with the command that builds it.
pub fn agent_bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the agents first (cargo build --workspace --bins), or set HANDOFF_BIN_DIR",
        p.display()
    );
    p
}

/// Whether a skip must fail the run: under CI (`CI=true`, as CI systems
/// set it, or `HANDOFF_NO_SKIP=1`), so that a suite that could not run
/// never shows as passed.
pub fn no_skips() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("HANDOFF_NO_SKIP")
}

/// Skip the calling test, loudly: a line `SKIPPED test: why` on a
/// developer's machine (ci/test counts them), a failure under CI.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if no_skips() {
        panic!("{test} could not run, and CI does not skip: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// True when running as root; otherwise skips (see [`skip`]).
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(
        test,
        "needs root (namespaces, loop devices, mounts); run the suite as root, e.g. sudo ci/test",
    );
    false
}

/// Skip the calling test unless it runs as root.
#[macro_export]
macro_rules! needs_root {
    ($name:expr) => {
        if !$crate::util::require_root($name) {
            return;
        }
    };
}

/// A program that a test needs; prints why the test is skipped when absent.
pub fn have(program: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| Path::new(d).join(program).exists());
    if !found {
        skip(
            test,
            &format!("{program} is not installed (ci/deps installs it)"),
        );
    }
    found
}

/// A scratch directory, removed when dropped (kept with HANDOFF_KEEP=1).
pub struct Scratch {
    path: PathBuf,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Scratch {
    /// A fresh directory under /tmp/handoff-tests.
    pub fn new(name: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let path = PathBuf::from(format!(
            "/tmp/handoff-tests/{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("HANDOFF_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Poll `f` every `every` until it is true or `timeout` passes.
pub fn wait_until(timeout: Duration, every: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Run a command to completion, panicking with its output when it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    succeeded(cmd, out)
}

/// `out`, unless `cmd` failed: then a panic with what it printed.
fn succeeded(cmd: &Command, out: Output) -> Output {
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`run_ok`] with `input` on the command's stdin (for what is too long
/// for one argument: Linux takes at most 128 KiB in each).
pub fn run_ok_with_input(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write to {cmd:?}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    succeeded(cmd, out)
}

/// Stdout of a successful command, as text.
pub fn stdout_ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run_ok(cmd).stdout).into_owned()
}

/// Copy the built agents into `<dir>/handoff`, an OCF provider directory.
pub fn stage_provider(dir: &Path) -> PathBuf {
    let provider = dir.join("handoff");
    std::fs::create_dir_all(&provider).expect("provider dir");
    for a in crate::cluster::AGENTS {
        let src = bin_dir().join(a);
        if src.exists() {
            std::fs::copy(&src, provider.join(a)).expect("stage agent");
        }
    }
    provider
}

/// A CIB made from pcs argument lists with `pcs -f` here, in a sandbox
/// where ocf:handoff:* is installed (pcs checks agents exist, and starts
/// in a fraction of the time it takes under emulation), for a guest to
/// load: `scratch`/cib.xml.
pub fn cib_from_pcs(scratch: &Path, commands: &[Vec<String>]) -> PathBuf {
    let sb = crate::Sandbox::new();
    let provider = stage_provider(&scratch.join("provider"));
    sb.overlay_ocf(&provider, scratch);
    let cib = scratch.join("cib.xml");
    let empty = run_ok(Command::new("cibadmin").arg("--empty"));
    std::fs::write(&cib, &empty.stdout).expect("cib.xml");
    for args in commands {
        run_ok(sb.command("pcs").arg("-f").arg(&cib).args(args));
    }
    cib
}

/// Run ci/kernel with `args` (it builds or reuses the Rust test kernel):
/// its standard output, or None when it says the toolchain is
/// unavailable (exit 3), after skipping `test` loudly.
pub fn ci_kernel(test: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(workspace_root().join("ci/kernel"))
        .args(args)
        .output()
        .expect("ci/kernel runs");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        skip(test, err.lines().last().unwrap_or("ci/kernel cannot build"));
        return None;
    }
    let tail: Vec<&str> = err.lines().rev().take(40).collect();
    assert!(
        out.status.success(),
        "ci/kernel {args:?} failed:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
