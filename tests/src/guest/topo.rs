//! The guest's topology: hosts (cluster nodes, the client) are each a
//! network, mount and UTS namespace held by a `handoff-vmtest --hold`
//! process, with private /run and /var/lib/nfs and their own nfsd
//! filesystem, joined by a bridge in the guest's root namespace.

use std::process::{Command, Stdio};
use std::time::Duration;

use nix::mount::{mount, MsFlags};

use super::sys::{self, wait_for, Done};

/// `--hold NAME`: runs inside fresh namespaces (made by unshare); prepares
/// them and keeps them alive.
pub fn hold(args: &[String]) {
    let name = args.first().cloned().unwrap_or_default();
    let _ = nix::unistd::sethostname(&name);
    let tmpfs = |dst: &str| {
        let _ = mount(
            Some("tmpfs"),
            dst,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("mode=755"),
        );
    };
    tmpfs("/run");
    tmpfs("/var/lib/nfs");
    for d in [
        "/run/rpcbind",
        "/run/resource-agents",
        "/var/lib/nfs/sm",
        "/var/lib/nfs/sm.bak",
        "/var/lib/nfs/v4recovery",
    ] {
        let _ = std::fs::create_dir_all(d);
    }
    for f in ["/var/lib/nfs/etab", "/var/lib/nfs/rmtab"] {
        let _ = std::fs::write(f, "");
    }
    // This namespace's own nfsd control files.
    let _ = mount(
        Some("nfsd"),
        "/proc/fs/nfsd",
        Some("nfsd"),
        MsFlags::empty(),
        None::<&str>,
    );
    let _ = sys::run(&mut sys::cmd(&["ip", "link", "set", "lo", "up"]));
    let _ = std::fs::write(format!("/tmp/ready-{name}"), "");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// One host.
pub struct Host {
    /// Its name (and hostname).
    pub name: String,
    /// Its address on the bridge.
    pub addr: String,
    /// The PID holding its namespaces.
    pub pid: u32,
    holder: std::process::Child,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Host {
    /// Create the host, wired to the bridge with `addr`/24.
    pub fn new(name: &str, addr: &str) -> Host {
        let child = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--",
                "/handoff/bin/handoff-vmtest",
                "--hold",
                name,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let pid = child.id();
        let ready = wait_for(Duration::from_secs(10), || {
            std::path::Path::new(&format!("/tmp/ready-{name}")).exists()
        });
        assert!(ready.is_some(), "{name} did not come up");
        let port = format!("v-{name}");
        sys::ok(&[
            "ip",
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &pid.to_string(),
        ]);
        sys::ok(&["ip", "link", "set", &port, "master", "br0", "up"]);
        let h = Host {
            name: name.to_owned(),
            addr: addr.to_owned(),
            pid,
            holder: child,
        };
        h.ok(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        h.ok(&["ip", "link", "set", "eth0", "up"]);
        h
    }

    /// A host whose network is the existing namespace `netns` (a cluster's
    /// switch, say), with mount and UTS namespaces of its own.
    pub fn in_netns(name: &str, netns: &str, addr: &str) -> Host {
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "--"])
            .args(["/handoff/bin/handoff-vmtest", "--hold", name])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let ready = wait_for(Duration::from_secs(10), || {
            std::path::Path::new(&format!("/tmp/ready-{name}")).exists()
        });
        assert!(ready.is_some(), "{name} did not come up");
        // ip netns exec forks: the holder is the child of its child.
        let pid = wait_for(Duration::from_secs(5), || {
            holder_pid(child.id(), name).is_some()
        })
        .and_then(|_| holder_pid(child.id(), name))
        .expect("the holder's PID");
        Host {
            name: name.to_owned(),
            addr: addr.to_owned(),
            pid,
            holder: child,
        }
    }

    /// A command run in the host's namespaces.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-n", "-m", "-u", "--"])
            .args(args);
        c
    }

    /// Run in the host.
    pub fn run(&self, args: &[&str]) -> Done {
        sys::run(&mut self.cmd(args))
    }

    /// Run in the host, killed after `limit`.
    pub fn run_for(&self, args: &[&str], limit: Duration) -> Done {
        sys::run_for(&mut self.cmd(args), limit)
    }

    /// Run in the host; panic unless it succeeds.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let d = self.run(args);
        assert!(
            d.code == 0,
            "{}: {args:?} failed ({}): {} {}",
            self.name,
            d.code,
            d.stdout,
            d.stderr
        );
        d.stdout
    }

    /// Write a file as seen from the host (its own /proc/fs/nfsd, /run...).
    pub fn write(&self, path: &str, value: &str) {
        self.ok(&["/handoff/bin/handoff-vmtest", "--write", path, value]);
    }

    /// Read a file as seen from the host (proc files answer for the
    /// reader's namespace, so this reads from inside it).
    pub fn read(&self, path: &str) -> String {
        self.run(&["/handoff/bin/handoff-vmtest", "--read", path])
            .stdout
    }

    /// The TCP sockets of the host whose local address is `ip` (an IPv4
    /// address, on IPv4 sockets and as ::ffff:ip on IPv6 ones), listeners
    /// aside: each as its state (the kernel's hex code) and remote end.
    pub fn sockets_on(&self, ip: std::net::Ipv4Addr) -> Vec<String> {
        // /proc/net/tcp prints an IPv4 address as one native-endian word.
        let word = format!("{:08X}", u32::from_ne_bytes(ip.octets()));
        let v4 = format!("{word}:");
        let mapped = format!("0000000000000000FFFF0000{word}:");
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .flat_map(|t| {
                self.read(t)
                    .lines()
                    .skip(1)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (local, remote, state) = (f.get(1)?, f.get(2)?, f.get(3)?);
                let ours = local.starts_with(&v4) || local.starts_with(&mapped);
                (ours && *state != "0A").then(|| format!("{state} {remote}"))
            })
            .collect()
    }

    /// The host's mount table.
    pub fn mountinfo(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).unwrap_or_default()
    }

    /// Whether something is mounted at `dir` in the host.
    pub fn is_mounted(&self, dir: &str) -> bool {
        self.mountinfo()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(dir))
    }

    /// Start rpcbind, rpc.statd, rpc.mountd and nfsd with `grace` seconds
    /// of grace (0: the kernel's defaults, 90 s).
    pub fn start_nfs_server(&self, grace: u32) {
        self.set_grace(grace);
        for argv in NFS_SERVER {
            self.ok(argv);
        }
    }

    /// Set the grace and lease times the next nfsd start uses.
    pub fn set_grace(&self, grace: u32) {
        let (v4, nlm) = if grace == 0 { (90, 0) } else { (grace, grace) };
        self.write("/proc/fs/nfsd/nfsv4gracetime", &v4.to_string());
        self.write("/proc/fs/nfsd/nfsv4leasetime", &v4.to_string());
        // A global lockd parameter, the same for every namespace.
        let _ = std::fs::write("/proc/sys/fs/nfs/nlm_grace_period", nlm.to_string());
    }

    /// Whether this host's lockd is in grace (lockd's answer ends in a NUL
    /// byte: only the first byte counts).
    pub fn in_grace(&self) -> bool {
        self.read("/proc/fs/lockd/nlm_end_grace").starts_with('N')
    }

    /// Start rpcbind and rpc.statd for an NFS client.
    pub fn start_nfs_client(&self) {
        self.ok(&["rpcbind", "-w"]);
        self.ok(&["rpc.statd", "--no-notify"]);
    }
}

/// A node-wide NFS server's daemons, in start order, as a distribution
/// starts them at boot (statd without notifying: the tests send SM_NOTIFY).
pub const NFS_SERVER: [&[&str]; 4] = [
    &["rpcbind", "-w"],
    &["rpc.statd", "--no-notify"],
    &["rpc.mountd"],
    &["rpc.nfsd", "8"],
];

/// The PID of the `--hold NAME` process started under `parent`.
fn holder_pid(parent: u32, name: &str) -> Option<u32> {
    let mut todo = vec![parent];
    while let Some(p) = todo.pop() {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args
            .windows(2)
            .any(|w| w[0] == b"--hold" && w[1] == name.as_bytes())
        {
            return Some(p);
        }
        let kids =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    None
}

/// The guest's bridge (its root namespace is the switch).
pub fn bridge() {
    sys::ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    sys::ok(&["ip", "link", "set", "br0", "up"]);
}
