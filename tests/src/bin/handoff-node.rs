//! PID 1 of one Pacemaker test node: gives the node private copies of the
//! directories Pacemaker and Corosync keep state in, overlays the handoff
//! agents on the compiled-in OCF path, then runs corosync and pacemakerd as
//! children until told to stop (SIGTERM: pacemakerd first, so resources
//! stop cleanly, then corosync).
//!
//! Usage: handoff-node NAME NODE_DIR PROVIDER_DIR [SBIN_EXTRA_DIR]

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn bind(from: &Path, to: &Path) {
    fs::create_dir_all(to).ok();
    mount(
        Some(from),
        to,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap_or_else(|e| panic!("bind {} -> {}: {e}", from.display(), to.display()));
}

fn tmpfs(to: &Path, mode: &str) {
    fs::create_dir_all(to).ok();
    mount(
        Some("tmpfs"),
        to,
        Some("tmpfs"),
        MsFlags::empty(),
        Some(mode),
    )
    .unwrap_or_else(|e| panic!("tmpfs {}: {e}", to.display()));
}

fn chown_cluster(p: &Path) {
    let _ = Command::new("chown")
        .args(["-R", "hacluster:haclient"])
        .arg(p)
        .status();
}

fn spawn_logged(program: &str, args: &[&str], log: &Path) -> Child {
    let out = fs::File::create(log).expect("create log");
    let err = out.try_clone().expect("clone log");
    let mut cmd = Command::new(program);
    // std keeps the parent's signal mask across exec, and this init blocks
    // SIGTERM/SIGCHLD to wait for them: the daemons must not inherit that.
    // SAFETY: pthread_sigmask is async-signal-safe; nothing else runs
    // between fork and exec.
    unsafe {
        cmd.pre_exec(|| SigSet::all().thread_unblock().map_err(std::io::Error::from));
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"))
}

fn reap() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

fn alive(pid: u32) -> bool {
    reap();
    nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
}

fn stop(mut child: Child, grace: Duration) {
    let pid = Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, Signal::SIGTERM);
    let end = Instant::now() + grace;
    while alive(child.id()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    // Usually reaped already by reap(); then this reports ECHILD.
    let _ = child.wait();
}

/// The node's own NFS server, as a distribution starts it at boot (for the
/// node-wide export groups): rpcbind, statd, mountd and nfsd with `grace`
/// seconds of grace and lease, in the node's namespaces.
fn start_nfs_server(grace: &str, d: &Path) {
    for sub in ["sm", "sm.bak", "v4recovery"] {
        fs::create_dir_all(Path::new("/var/lib/nfs").join(sub)).ok();
    }
    if let Err(e) = mount(
        Some("nfsd"),
        "/proc/fs/nfsd",
        Some("nfsd"),
        MsFlags::empty(),
        None::<&str>,
    ) {
        eprintln!("nfsd filesystem: {e}");
    }
    for f in ["nfsv4gracetime", "nfsv4leasetime"] {
        fs::write(Path::new("/proc/fs/nfsd").join(f), grace).ok();
    }
    for argv in handoff_tests::guest::topo::NFS_SERVER {
        let [program, args @ ..] = argv else { continue };
        let log = d.join(format!("log/{program}.log"));
        let ok = spawn_logged(program, args, &log)
            .wait()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("{program} failed; see {}", log.display());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, name, dir, provider, rest @ ..] = args.as_slice() else {
        eprintln!("usage: handoff-node NAME NODE_DIR PROVIDER_DIR [SBIN_EXTRA_DIR]");
        std::process::exit(2);
    };
    let d = PathBuf::from(dir);
    nix::unistd::sethostname(name).expect("hostname");
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    bind(&d.join("etc-corosync"), Path::new("/etc/corosync"));
    bind(&d.join("var-lib-corosync"), Path::new("/var/lib/corosync"));
    bind(
        &d.join("var-lib-pacemaker"),
        Path::new("/var/lib/pacemaker"),
    );
    bind(&d.join("log"), Path::new("/var/log/pacemaker"));
    tmpfs(Path::new("/dev/shm"), "mode=1777");
    // exportfs keeps its table here: one per node.
    tmpfs(Path::new("/var/lib/nfs"), "mode=755");
    for f in ["etab", "rmtab"] {
        fs::write(Path::new("/var/lib/nfs").join(f), "").ok();
    }
    fs::create_dir_all("/var/lib/nfs/sm").ok();
    tmpfs(Path::new("/run"), "mode=755");
    for sub in ["resource-agents", "crm", "lock", "rpcbind"] {
        fs::create_dir_all(Path::new("/run").join(sub)).ok();
    }
    chown_cluster(Path::new("/run/crm"));
    // The OCF path is compiled into Pacemaker: overlay the providers there.
    let ocfroot = d.join("ocfroot");
    tmpfs(&ocfroot, "mode=755");
    let system = Path::new("/usr/lib/ocf/resource.d");
    if let Ok(entries) = fs::read_dir(system) {
        for e in entries.flatten() {
            bind(&e.path(), &ocfroot.join(e.file_name()));
        }
    }
    if let Ok(entries) = fs::read_dir(provider) {
        for e in entries.flatten() {
            bind(&e.path(), &ocfroot.join(e.file_name()));
        }
    }
    bind(&ocfroot, system);
    // Fence agents are looked up in /usr/sbin only.
    if let Some(extra) = rest.first() {
        mount(
            Some("overlay"),
            "/usr/sbin",
            Some("overlay"),
            MsFlags::empty(),
            Some(format!("lowerdir={extra}:/usr/sbin").as_str()),
        )
        .expect("overlay /usr/sbin");
    }

    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGTERM);
    blocked.add(Signal::SIGINT);
    blocked.add(Signal::SIGCHLD);
    blocked.thread_block().expect("block signals");

    if let Ok(grace) = std::env::var("HANDOFF_NODE_NFS") {
        start_nfs_server(&grace, &d);
    }
    let corosync = spawn_logged("corosync", &["-f"], &d.join("log/corosync.stdout"));
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        Command::new("corosync-cfgtool")
            .arg("-s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !up {
        eprintln!("[{name}] corosync did not come up");
    }
    let pacemakerd = spawn_logged("pacemakerd", &["-f"], &d.join("log/pacemakerd.stdout"));
    fs::write(d.join("alive"), format!("{}\n", std::process::id())).ok();

    loop {
        match blocked.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(Signal::SIGTERM | Signal::SIGINT) => break,
            _ => {}
        }
    }
    stop(pacemakerd, Duration::from_secs(120));
    stop(corosync, Duration::from_secs(10));
    let _ = fs::remove_file(d.join("alive"));
}
