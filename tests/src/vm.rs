//! The NFS test VM, host side: a base image (Debian's kernel with its
//! modules, busybox, nfs-utils and rpcbind with their libraries) built once
//! and cached outside the repository under a key made of its inputs; a
//! small per-run overlay with the freshly built agents and the guest
//! driver; qemu with KVM when it works here, TCG otherwise; and the result
//! lines the guest driver prints on the serial console.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin_dir, have, run_ok, stdout_ok, workspace_root};

/// Bumped whenever the image recipe below changes.
const RECIPE: &str = "handoff-vm-image-v9";

/// Kernel modules the scenarios need (their dependencies come along).
const MODULES: &[&str] = &[
    // Built into 6.12, a module in 6.1 (a built-in one is skipped).
    "virtio_pci",
    "virtio_blk",
    "ext4",
    "xfs",
    "loop",
    "veth",
    "bridge",
    "nfsd",
    "nfsv3",
    "nfsv4",
    "macvlan",
    // The host's root filesystem, for the Pacemaker scenarios.
    "9p",
    "9pnet_virtio",
    "overlay",
    // Machines of their own (the crash scenarios): network cards, the
    // host's command port, and sbd's watchdog.
    "virtio_net",
    "virtio_console",
    "softdog",
];

/// Host programs copied into the guest, with their libraries.
const PROGRAMS: &[&str] = &[
    "/usr/sbin/rpcbind",
    "/usr/sbin/rpc.statd",
    "/usr/sbin/sm-notify",
    "/usr/sbin/rpc.nfsd",
    "/usr/sbin/rpc.mountd",
    "/usr/sbin/nfsdcld",
    "/usr/sbin/exportfs",
    "/usr/sbin/rpcinfo",
    "/usr/sbin/mount.nfs",
    "/usr/sbin/showmount",
    "/usr/sbin/mkfs.ext4",
    "/usr/sbin/mkfs.xfs",
    "/usr/sbin/e2fsck",
    "/usr/sbin/fsck",
    "/usr/sbin/fsck.ext4",
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/sbin/ip",
];

/// busybox applets the guest has by name.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "ps", "mount", "umount", "poweroff", "sleep", "losetup",
];

/// Guest-side agent and driver binaries, from the build directory.
const GUEST_BINARIES: &[&str] = &[
    "fs",
    "vip",
    "export",
    "nlm-locks",
    "nfs-server",
    "handoff-vmtest",
    "handoff-node",
];

/// 64-bit FNV-1a: a stable hash for cache keys (std's is not stable).
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

fn resolve(p: &str) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p))
}

/// Where cached images live (outside the repository).
pub fn cache_root() -> PathBuf {
    std::env::var_os("HANDOFF_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/handoff"))
}

/// The kernel series the VMs boot: Debian's 6.12 (the default), or
/// `HANDOFF_VM_KERNEL=6.1` for Debian 12's stock kernel.
pub fn kernel_series() -> &'static str {
    match std::env::var("HANDOFF_VM_KERNEL").as_deref() {
        Ok("6.1") => "6.1",
        Ok("6.12") | Err(_) => "6.12",
        Ok(other) => panic!("HANDOFF_VM_KERNEL={other}: use 6.12 or 6.1"),
    }
}

/// `name` for a log or a report: the suite's, plus the kernel series
/// when it is not the default one.
pub fn run_name(name: &str) -> String {
    match kernel_series() {
        "6.12" => name.to_owned(),
        series => format!("{name}-{series}"),
    }
}

/// The newest Debian kernel image package of the series the archive
/// offers, and its release (the modules' directory).
fn kernel_package() -> (String, String) {
    let pattern = match kernel_series() {
        "6.1" => r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$",
        _ => r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$",
    };
    let out = stdout_ok(Command::new("apt-cache").args(["search", "--names-only", pattern]));
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    // By the numbers in the name: 6.12.57 after 6.12.9, 6.1.0-57 after 6.1.0-9.
    names.sort_by_key(|n| {
        n.split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u32>().ok())
            .collect::<Vec<_>>()
    });
    let pkg = names.pop().unwrap_or_else(|| {
        panic!("no kernel package matching {pattern} in the archive; run apt-get update")
    });
    let release = pkg
        .trim_start_matches("linux-image-")
        .trim_end_matches("-unsigned")
        .to_owned();
    (pkg, release)
}

/// Libraries a dynamic program needs (none for a static one).
fn libraries(program: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(program).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some((_, rest)) = l.split_once("=> ") {
                rest.split_whitespace()
                    .next()
                    .filter(|p| p.starts_with('/'))
                    .map(PathBuf::from)
            } else {
                l.split_whitespace()
                    .next()
                    .filter(|p| p.starts_with('/'))
                    .map(PathBuf::from)
            }
        })
        .collect()
}

fn copy_with_libs(tree: &Path, program: &Path, dest: &Path, libs: &mut BTreeSet<PathBuf>) {
    let target = tree.join(dest.strip_prefix("/").unwrap_or(dest));
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::copy(program, &target).unwrap_or_else(|e| panic!("copy {}: {e}", program.display()));
    libs.extend(libraries(program));
}

fn install_libs(tree: &Path, libs: &BTreeSet<PathBuf>) {
    for lib in libs {
        let real = std::fs::canonicalize(lib).unwrap_or_else(|_| lib.clone());
        let target = tree.join(lib.strip_prefix("/").unwrap_or(lib));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        if !target.exists() {
            std::fs::copy(&real, &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", real.display()));
        }
    }
}

/// Pack a directory tree as a newc cpio archive (sorted, so reproducible).
fn cpio(tree: &Path, out: &Path) {
    let mut names = Vec::new();
    let mut stack = vec![PathBuf::from(".")];
    while let Some(rel) = stack.pop() {
        names.push(rel.clone());
        let abs = tree.join(&rel);
        if abs.is_dir() && !abs.is_symlink() {
            for e in std::fs::read_dir(&abs).expect("readdir").flatten() {
                stack.push(rel.join(e.file_name()));
            }
        }
    }
    names.sort();
    let file = std::fs::File::create(out).expect("create cpio");
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(tree)
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .expect("cpio");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for n in &names {
            writeln!(stdin, "{}", n.display()).expect("write cpio list");
        }
    }
    assert!(child.wait().expect("cpio").success(), "cpio failed");
}

/// A built base image.
pub struct Image {
    /// The kernel.
    pub kernel: PathBuf,
    /// The base initramfs.
    pub initrd: PathBuf,
    /// Its cache key.
    pub key: String,
}

/// Build the base image, or reuse the cached one with the same inputs.
pub fn base_image() -> Image {
    let (pkg, release) = kernel_package();
    let mut h = fnv(0xcbf29ce484222325, RECIPE.as_bytes());
    h = fnv(h, pkg.as_bytes());
    for m in MODULES {
        h = fnv(h, m.as_bytes());
    }
    for a in APPLETS {
        h = fnv(h, a.as_bytes());
    }
    for p in PROGRAMS.iter().chain(["/bin/busybox"].iter()) {
        h = fnv(h, p.as_bytes());
        h = fnv(h, &std::fs::read(resolve(p)).unwrap_or_default());
    }
    let key = format!("{h:016x}");
    let dir = cache_root().join("vm").join(&key);
    let image = Image {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("base.cpio"),
        key: key.clone(),
    };
    if image.kernel.exists() && image.initrd.exists() {
        return image;
    }
    let t = Instant::now();
    let work = dir.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("cache dir");
    run_ok(
        Command::new("apt-get")
            .args(["-q", "download", &pkg])
            .current_dir(&work),
    );
    let deb = std::fs::read_dir(&work)
        .expect("work")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("downloaded kernel package");
    let pkgroot = work.join("pkgroot");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&pkgroot));
    run_ok(Command::new("depmod").arg("-b").arg(&pkgroot).arg(&release));

    let tree = work.join("tree");
    for d in [
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "srv",
        "mnt",
        "var/lib/nfs",
        "etc",
        "handoff/bin",
    ] {
        std::fs::create_dir_all(tree.join(d)).expect("mkdir");
    }
    std::os::unix::fs::symlink("/run", tree.join("var/run")).expect("symlink");
    let mut libs = BTreeSet::new();
    copy_with_libs(
        &tree,
        Path::new("/bin/busybox"),
        Path::new("/bin/busybox"),
        &mut libs,
    );
    for applet in APPLETS {
        let _ = std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet));
    }
    for p in PROGRAMS {
        copy_with_libs(&tree, &resolve(p), Path::new(p), &mut libs);
    }
    install_libs(&tree, &libs);
    let _ = std::os::unix::fs::symlink("mount.nfs", tree.join("usr/sbin/umount.nfs"));
    for f in ["netconfig", "services", "protocols", "rpc"] {
        std::fs::copy(Path::new("/etc").join(f), tree.join("etc").join(f)).expect("etc file");
    }
    let etc =
        |name: &str, text: &str| std::fs::write(tree.join("etc").join(name), text).expect("etc");
    etc("passwd", "root:x:0:0:root:/root:/bin/sh\n_rpc:x:100:65534::/run/rpcbind:/usr/sbin/nologin\nstatd:x:101:65534::/var/lib/nfs:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    etc("group", "root:x:0:\nnogroup:x:65534:\n");
    etc(
        "nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files\n",
    );
    // sm-notify -v needs a name for every virtual IP (it refuses bare
    // addresses), and statd matches clients by name.
    etc(
        "hosts",
        "127.0.0.1 localhost\n192.0.2.11 node1\n192.0.2.12 node2\n192.0.2.13 node3\n192.0.2.50 client\n192.0.2.100 nfs-a\n192.0.2.101 nfs-b\n192.0.2.102 nfs-c\n192.0.2.120 nfs-na\n192.0.2.122 nfs-nc\n",
    );
    etc("exports", "");
    let _ = std::os::unix::fs::symlink("/proc/mounts", tree.join("etc/mtab"));

    // Modules, decompressed, in dependency order.
    let mods = pkgroot.join("lib/modules").join(&release);
    let mut order = Vec::new();
    for m in MODULES {
        let out = stdout_ok(Command::new("modprobe").arg("-d").arg(&pkgroot).args([
            "-S",
            &release,
            "--show-depends",
            m,
        ]));
        for l in out.lines() {
            if let Some(path) = l.strip_prefix("insmod ").map(|p| p.trim()) {
                let rel = Path::new(path)
                    .strip_prefix(&mods)
                    .expect("module path")
                    .to_owned();
                if !order.contains(&rel) {
                    order.push(rel);
                }
            }
        }
    }
    let mut load = String::new();
    for rel in &order {
        // Debian compresses its modules with xz (6.12) or not at all (6.1).
        let xz = rel.extension().is_some_and(|x| x == "xz");
        let plain = if xz {
            rel.with_extension("")
        } else {
            rel.clone()
        };
        let target = tree.join("lib/modules").join(&plain);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        if xz {
            let out = run_ok(Command::new("xz").arg("-dc").arg(mods.join(rel)));
            std::fs::write(&target, out.stdout).expect("module");
        } else {
            std::fs::copy(mods.join(rel), &target).expect("module");
        }
        load.push_str(&format!("/lib/modules/{}\n", plain.display()));
    }
    std::fs::write(tree.join("modules.load"), load).expect("modules.load");

    cpio(&tree, &image.initrd);
    std::fs::copy(
        pkgroot.join(format!("boot/vmlinuz-{release}")),
        &image.kernel,
    )
    .expect("kernel");
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "built VM base image {key} ({pkg}) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    image
}

/// The per-run overlay: agents and the guest driver as built now, and
/// `extra` files (host path, guest path).
pub(crate) fn overlay(dir: &Path, extra: &[(PathBuf, &str)]) -> PathBuf {
    let tree = dir.join("overlay");
    let _ = std::fs::remove_dir_all(&tree);
    let mut libs = BTreeSet::new();
    for b in GUEST_BINARIES {
        let src = bin_dir().join(b);
        assert!(
            src.exists(),
            "{} is not built (cargo build --workspace --bins)",
            src.display()
        );
        copy_with_libs(&tree, &src, &Path::new("/handoff/bin").join(b), &mut libs);
    }
    install_libs(&tree, &libs);
    for (src, dst) in extra {
        let dst = tree.join(dst.trim_start_matches('/'));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).expect("overlay dir");
        }
        std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
    let out = dir.join("overlay.cpio");
    cpio(&tree, &out);
    out
}

/// The checks and measurements in a guest's console log.
pub(crate) fn parse_results(log: &str) -> (Vec<Check>, Vec<Metric>) {
    let mut checks = Vec::new();
    let mut metrics = Vec::new();
    for line in log.lines() {
        if let Some(j) = line.split_once("HANDOFF-CHECK ").map(|(_, j)| j) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(j) {
                checks.push(Check {
                    name: v["name"].as_str().unwrap_or_default().to_owned(),
                    ok: v["ok"].as_bool().unwrap_or(false),
                    detail: v["detail"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        if let Some(j) = line.split_once("HANDOFF-METRIC ").map(|(_, j)| j) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(j) {
                metrics.push(Metric {
                    name: v["name"].as_str().unwrap_or_default().to_owned(),
                    value: v["value"].as_f64().unwrap_or(f64::NAN),
                    unit: v["unit"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
    }
    (checks, metrics)
}

/// One result line of the guest driver.
#[derive(Clone, Debug)]
pub struct Check {
    /// Scenario and check name.
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct Metric {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
}

/// What a VM run printed.
pub struct Run {
    /// Every check.
    pub checks: Vec<Check>,
    /// Every measurement.
    pub metrics: Vec<Metric>,
    /// The whole console log.
    pub log: String,
    /// The guest reached its end.
    pub finished: bool,
    /// "kvm" or "tcg".
    pub accel: &'static str,
}

pub(crate) fn kvm_works(image: &Image, overlay: &Path) -> bool {
    let verdict = cache_root().join("vm").join(format!("kvm-{}", image.key));
    if let Ok(v) = std::fs::read_to_string(&verdict) {
        return v.trim() == "yes";
    }
    let ok = Path::new("/dev/kvm").exists() && {
        let r = boot_machine(
            image,
            overlay,
            "kvm",
            "handoff.mode=boot",
            Duration::from_secs(60),
            None,
            Machine::default(),
        );
        r.finished
    };
    let _ = std::fs::write(&verdict, if ok { "yes\n" } else { "no\n" });
    ok
}

/// How a guest boots besides its kernel and images.
#[derive(Clone, Copy, Default)]
pub(crate) struct Machine {
    /// Share the host's root filesystem read-only (9p): the guest then
    /// runs on it under a writable overlay (`handoff.root=host`).
    pub(crate) host_root: bool,
    /// Memory in MiB (2048 when 0).
    pub(crate) memory_mib: u32,
    /// Virtual CPUs (2 when 0).
    pub(crate) cpus: u32,
}

/// The base image and the per-run overlay as one initrd at `out`.
pub(crate) fn join_initrd(image: &Image, overlay: &Path, out: &Path) {
    let mut all = std::fs::read(&image.initrd).expect("base initrd");
    all.extend(std::fs::read(overlay).expect("overlay"));
    std::fs::write(out, all).expect("initrd");
}

/// qemu with the guest's kernel, `initrd`, console on stdout, and
/// `args` on the kernel command line; disks and devices are the caller's.
pub(crate) fn qemu(
    image: &Image,
    initrd: &Path,
    accel: &str,
    args: &str,
    machine: Machine,
) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    match accel {
        "kvm" => cmd.args(["-enable-kvm", "-cpu", "host"]),
        _ => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
    };
    let memory = if machine.memory_mib == 0 {
        2048
    } else {
        machine.memory_mib
    };
    let cpus = if machine.cpus == 0 { 2 } else { machine.cpus };
    cmd.args(["-machine", "pc", "-m"])
        .arg(memory.to_string())
        .args(["-smp", &cpus.to_string(), "-nodefaults", "-no-user-config"]);
    if machine.host_root {
        cmd.args([
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        ]);
    }
    cmd.args(["-display", "none", "-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&image.kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(format!(
            // Expedited RCU: under emulation a normal grace period takes
            // up to seconds, and every read of /proc/locks (the agents' and
            // the checks') holds all file locking for one; hardware takes
            // milliseconds, which expedited grace periods come closer to.
            "console=ttyS0 quiet panic=-1 rcupdate.rcu_expedited=1 rdinit=/handoff/bin/handoff-vmtest {args}"
        ));
    cmd
}

fn boot_machine(
    image: &Image,
    overlay: &Path,
    accel: &'static str,
    args: &str,
    timeout: Duration,
    disks: Option<&[PathBuf]>,
    machine: Machine,
) -> Run {
    let run_initrd = overlay.with_file_name(format!("run-{accel}.cpio"));
    join_initrd(image, overlay, &run_initrd);
    let mut cmd = qemu(image, &run_initrd, accel, args, machine);
    for d in disks.unwrap_or_default() {
        cmd.arg("-drive").arg(format!(
            "file={},if=virtio,format=raw,cache=unsafe",
            d.display()
        ));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 (install qemu-system-x86)");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut end = Instant::now() + timeout;
    let mut log = String::new();
    let mut finished = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                if std::env::var_os("HANDOFF_VM_ECHO").is_some() {
                    eprintln!("guest: {line}");
                }
                if line.contains("HANDOFF-DONE") && !finished {
                    finished = true;
                    // It powers off next; a kernel that cannot is ended.
                    end = end.min(Instant::now() + Duration::from_secs(15));
                }
                log.push_str(&line);
                log.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let (checks, metrics) = parse_results(&log);
    Run {
        checks,
        metrics,
        log,
        finished,
        accel,
    }
}

/// Boot the guest with `args` on its kernel command line (it runs the
/// scenarios they name) and five fresh shared disks (sparse files).
pub fn run(scratch: &Path, args: &str, timeout: Duration) -> Run {
    run_with(scratch, args, timeout, None, &[])
}

/// As [`run`], on `kernel` instead of Debian's (one with everything the
/// scenarios need built in: the guest then loads no module at boot), with
/// `extra` files (host path, guest path) in the guest.
pub fn run_with(
    scratch: &Path,
    args: &str,
    timeout: Duration,
    kernel: Option<&Path>,
    extra: &[(PathBuf, &str)],
) -> Run {
    run_machine(scratch, args, timeout, kernel, extra, Machine::default())
}

/// As [`run`], with the host's root filesystem as the guest's (read-only,
/// under a writable overlay): the scenarios then use the host's own
/// Pacemaker, corosync and pcs, with Debian's kernel and a real nfsd.
pub fn run_on_host_root(
    scratch: &Path,
    args: &str,
    timeout: Duration,
    extra: &[(PathBuf, &str)],
) -> Run {
    let machine = Machine {
        host_root: true,
        memory_mib: 3072,
        cpus: 0,
    };
    let args = format!("{args} handoff.root=host");
    run_machine(scratch, &args, timeout, None, extra, machine)
}

/// `args` with its scenario list replaced by `HANDOFF_SCENARIOS`, when set
/// (to run one scenario of a suite: `HANDOFF_SCENARIOS=vservers cargo test
/// --test vserver_vm`; the suite's checks for the others then fail).
fn scenarios_override(args: &str) -> String {
    let Ok(only) = std::env::var("HANDOFF_SCENARIOS") else {
        return args.to_owned();
    };
    args.split_whitespace()
        .map(|w| {
            if w.starts_with("handoff.scenarios=") {
                format!("handoff.scenarios={only}")
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_machine(
    scratch: &Path,
    args: &str,
    timeout: Duration,
    kernel: Option<&Path>,
    extra: &[(PathBuf, &str)],
    machine: Machine,
) -> Run {
    let mut image = base_image();
    // The guest's expectations that differ by kernel key on this.
    let mut args = format!(
        "{} handoff.kernel={}",
        scenarios_override(args),
        kernel_series()
    );
    if let Some(k) = kernel {
        image.key = format!(
            "{}-{:016x}",
            image.key,
            fnv(0xcbf29ce484222325, k.as_os_str().as_encoded_bytes())
        );
        image.kernel = k.to_owned();
        args.push_str(" handoff.modules=none");
    }
    let args = args.as_str();
    let ov = overlay(scratch, extra);
    let accel = if kvm_works(&image, &ov) { "kvm" } else { "tcg" };
    let disks = || -> Vec<PathBuf> {
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| {
                let p = scratch.join(format!("disk-{n}.img"));
                let f = std::fs::File::create(&p).expect("disk");
                f.set_len(512 << 20).expect("disk size");
                p
            })
            .collect()
    };
    let mut r = boot_machine(&image, &ov, accel, args, timeout, Some(&disks()), machine);
    // Under TCG the kernel itself sometimes dies in its first seconds
    // (seen: an int3 oops while patching sched_clock_cpu), before the
    // guest ran anything: that says nothing of what is tested, so the
    // machine boots once more, and the log says so.
    if !r.finished && r.log.contains("Kernel panic") && !r.log.contains("HANDOFF-") {
        eprintln!(
            "the VM's kernel panicked while booting, before the guest started; booting it again"
        );
        let first = r.log.clone();
        r = boot_machine(&image, &ov, accel, args, timeout, Some(&disks()), machine);
        r.log = format!(
            "{first}\n-- the kernel panicked while booting, before the guest started; booted again\n{}",
            r.log
        );
    }
    let _ = std::fs::write(scratch.join("console.log"), &r.log);
    r
}

/// Write a run's console log and metrics to target/vm-logs/ and print
/// its summary.
pub fn report(name: &str, run: &Run) {
    let name = &run_name(name);
    let dir = workspace_root().join("target/vm-logs");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}-console.log")), &run.log);
    let metrics: serde_json::Map<String, serde_json::Value> = run
        .metrics
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                serde_json::json!({ "value": m.value, "unit": m.unit }),
            )
        })
        .collect();
    let _ = std::fs::write(
        dir.join(format!("{name}-metrics.json")),
        serde_json::to_string_pretty(&metrics).unwrap_or_default(),
    );
    for (plot, written) in crate::plot::Plot::write_all_in_log(&run.log, name, &dir) {
        match written {
            Ok(path) => eprintln!("timeline plot: {}", path.display()),
            Err(e) => eprintln!("timeline plot {plot}: {e}"),
        }
    }
    eprintln!(
        "\n{name} ({}): {} checks, {} failed",
        run.accel,
        run.checks.len(),
        run.checks.iter().filter(|c| !c.ok).count()
    );
    for m in &run.metrics {
        eprintln!("  {:<40} {:>12.2} {}", m.name, m.value, m.unit);
    }
}

/// The host programs a VM test needs; says which is missing.
pub fn prerequisites(test: &str) -> bool {
    [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "xz",
        "dpkg-deb",
        "apt-get",
        "modprobe",
        "depmod",
        "rpc.nfsd",
        "sm-notify",
    ]
    .iter()
    .all(|p| have(p, test))
}

/// Fail unless the guest reached its end and every check held.
pub fn assert_passed(name: &str, run: &Run) {
    let name = &run_name(name);
    assert!(
        run.finished,
        "the VM did not reach its end; see target/vm-logs/{name}-console.log"
    );
    let failed: Vec<String> = run
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
}
