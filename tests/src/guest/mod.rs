//! The NFS test VM, guest side: `handoff-vmtest` is the VM's init. It
//! mounts the basics, loads the modules, runs the scenarios named on the
//! kernel command line in a child (so that it can reap the daemons that
//! double-fork), prints `HANDOFF-CHECK` and `HANDOFF-METRIC` lines on the
//! console for the host, and powers off.

pub mod cluster;
pub mod dropin;
pub mod folocks;
pub mod hostroot;
pub mod lockc;
pub mod lockd_trace;
pub mod report;
pub mod scale;
pub mod scenarios;
pub mod serve;
pub mod standby;
pub mod sys;
pub mod topo;
pub mod vservers;

use std::ffi::CString;
use std::time::Duration;

use nix::mount::{mount, MsFlags};

fn early_mounts() {
    let m = |src: &str, dst: &str, fstype: &str| {
        let _ = std::fs::create_dir_all(dst);
        let _ = mount(Some(src), dst, Some(fstype), MsFlags::empty(), None::<&str>);
    };
    m("proc", "/proc", "proc");
    m("sysfs", "/sys", "sysfs");
    m("devtmpfs", "/dev", "devtmpfs");
    m("devpts", "/dev/pts", "devpts");
    m("tmpfs", "/run", "tmpfs");
    m("tmpfs", "/tmp", "tmpfs");
}

fn load_modules() {
    // A kernel with everything built in (the kmod test's) loads none.
    if cmdline("handoff.modules").as_deref() == Some("none") {
        return;
    }
    let list = std::fs::read_to_string("/modules.load").unwrap_or_default();
    let params = CString::default();
    for path in list.lines().filter(|l| !l.is_empty()) {
        let loaded = match std::fs::File::open(path) {
            Ok(f) => nix::kmod::finit_module(&f, &params, nix::kmod::ModuleInitFlags::empty()),
            Err(e) => Err(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        };
        // crc32c-intel needs SSE4.2, which TCG may lack; its generic twin loads.
        if let Err(e) = loaded {
            if e != nix::errno::Errno::EEXIST {
                println!("module {path}: {e}");
            }
        }
    }
}

/// The value of `key=` on the kernel command line.
pub(crate) fn cmdline(key: &str) -> Option<String> {
    let c = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    c.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The entry point of `handoff-vmtest`.
pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--hold") => topo::hold(&args[2..]),
        Some("--lock") => std::process::exit(lockc::main(&args[2..])),
        Some("--folocks") => std::process::exit(folocks::main(&args[2..])),
        Some("--write") => {
            let ok = args.len() == 4 && std::fs::write(&args[2], &args[3]).is_ok();
            std::process::exit(if ok { 0 } else { 1 })
        }
        Some("--read") => match args.get(2).map(std::fs::read_to_string) {
            Some(Ok(text)) => print!("{text}"),
            _ => std::process::exit(1),
        },
        Some("--serve") => serve::main(),
        Some("--watch") => {
            // --watch OUT STOPFILE: every task's kernel stack each time it
            // changes, while it waits (D) or is one of the client's NFS
            // daemons, until STOPFILE exists.
            let (Some(out), Some(stop)) = (args.get(2), args.get(3)) else {
                std::process::exit(2)
            };
            sys::watch_stacks(std::path::Path::new(out), std::path::Path::new(stop));
        }
        Some("--run") => {
            scenarios::run_all(args.get(2).map(String::as_str).unwrap_or(""));
        }
        _ => init(),
    }
}

fn init() {
    early_mounts();
    load_modules();
    if cmdline("handoff.root").as_deref() == Some("host") {
        if let Err(e) = hostroot::enter() {
            report::check("setup: the guest runs on the host's root", false, e);
        }
    }
    std::env::set_var("PATH", "/handoff/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    println!(
        "HANDOFF-BOOTED {}",
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mode = cmdline("handoff.mode");
    if mode.as_deref() != Some("boot") {
        let scenarios = cmdline("handoff.scenarios").unwrap_or_default();
        let runner = if mode.as_deref() == Some("serve") {
            std::process::Command::new("/handoff/bin/handoff-vmtest")
                .arg("--serve")
                .spawn()
        } else {
            std::process::Command::new("/handoff/bin/handoff-vmtest")
                .args(["--run", &scenarios])
                .spawn()
        };
        match runner {
            Ok(child) => {
                let runner = nix::unistd::Pid::from_raw(child.id() as i32);
                // PID 1 reaps everything; the runner's end ends the VM.
                loop {
                    match nix::sys::wait::wait() {
                        Ok(s) if s.pid() == Some(runner) => break,
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(e) => println!("cannot start the scenario runner: {e}"),
        }
    }
    println!("HANDOFF-DONE");
    power_off();
}
