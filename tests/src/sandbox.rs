//! A sandbox: a sleeping process that holds a private mount namespace (and
//! optionally a network namespace); commands join it with nsenter. Mounts
//! made inside vanish with it, so a failing test leaves nothing mounted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::wait_until;

/// A namespace holder.
pub struct Sandbox {
    holder: Child,
    net: bool,
}

impl Sandbox {
    /// A private mount namespace.
    pub fn new() -> Self {
        Self::spawn(false)
    }

    /// A private mount namespace and an empty network namespace (lo up).
    pub fn with_net() -> Self {
        let sb = Self::spawn(true);
        crate::util::run_ok(sb.command("ip").args(["link", "set", "lo", "up"]));
        sb
    }

    fn spawn(net: bool) -> Self {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if net {
            cmd.arg("--net");
        }
        let holder = cmd
            .args(["--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let pid = holder.id();
        let mine = std::fs::read_link("/proc/self/ns/mnt").expect("own mount ns");
        let ready = wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
            std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|ns| ns != mine)
        });
        assert!(ready, "unshare did not create the namespace");
        Self { holder, net }
    }

    /// The holder's PID.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command that runs inside the sandbox.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.pid().to_string()).arg("-m");
        if self.net {
            cmd.arg("-n");
        }
        cmd.arg("--").arg(program);
        cmd
    }

    /// The sandbox's mount table.
    pub fn mountinfo(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid())).unwrap_or_default()
    }

    /// Make `ocf:handoff:*` visible at Pacemaker's compiled-in OCF path
    /// inside the sandbox only: a tmpfs holding bind mounts of the system's
    /// providers and of `provider` (a directory named `handoff`) is mounted
    /// over /usr/lib/ocf/resource.d.
    pub fn overlay_ocf(&self, provider: &Path, scratch: &Path) {
        let root = scratch.join("ocfroot");
        std::fs::create_dir_all(&root).expect("ocfroot");
        let mount = |args: &[&std::ffi::OsStr]| {
            crate::util::run_ok(self.command("mount").args(args));
        };
        mount(&[
            "-t".as_ref(),
            "tmpfs".as_ref(),
            "ocfroot".as_ref(),
            root.as_os_str(),
        ]);
        let system = Path::new("/usr/lib/ocf/resource.d");
        let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir(system)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.retain(|d| d.file_name() != provider.file_name());
        dirs.push(provider.to_owned());
        for d in dirs {
            let target = root.join(d.file_name().expect("provider name"));
            crate::util::run_ok(self.command("mkdir").arg("-p").arg(&target));
            mount(&["--bind".as_ref(), d.as_os_str(), target.as_os_str()]);
        }
        mount(&["--rbind".as_ref(), root.as_os_str(), system.as_os_str()]);
    }

    /// Whether something is mounted at `dir` inside the sandbox.
    pub fn is_mounted(&self, dir: &Path) -> bool {
        let want = dir.to_string_lossy();
        self.mountinfo()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&want))
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
