//! Pacemaker clusters made of namespaces on one machine.
//!
//! Each node is a network namespace (joined to the others by a bridge that
//! lives in a "switch" namespace, on 192.0.2.0/24) plus mount, UTS, IPC and
//! PID namespaces whose PID 1 is `handoff-node`; it runs the node's own
//! corosync and pacemakerd over private /etc/corosync, /var/lib/pacemaker,
//! /var/lib/corosync, /run and /dev/shm. Pacemaker's IPC uses abstract
//! sockets, which are per network namespace, so the cluster tools run
//! inside a node (`Node::command`). Teardown kills only the PIDs started
//! here: the node's init (the kernel then ends the rest of its PID
//! namespace) and deletes the namespaces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::util::{run_ok, wait_until, Scratch};

/// Agents copied into the handoff provider directory, when built.
pub const AGENTS: &[&str] = &["fs", "vip", "export", "nlm-locks", "nfs-server"];

/// One node.
pub struct Node {
    /// Its node name (and hostname).
    pub name: String,
    /// Its address on the cluster network.
    pub addr: String,
    /// Its network namespace.
    pub netns: String,
    /// Its state directory on the host.
    pub dir: PathBuf,
    unshare: Option<Child>,
    init_pid: u32,
}

impl Node {
    /// PID 1 of the node, as the host sees it.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// Whether the node's init still runs.
    pub fn running(&self) -> bool {
        self.init_pid != 0 && Path::new(&format!("/proc/{}", self.init_pid)).exists()
    }

    /// A command run inside every namespace of the node.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.init_pid.to_string(), "-a", "--", program]);
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .stdin(Stdio::null());
        cmd
    }

    /// Run a program in the node and return its output, whatever the status.
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program} in {}: {e}", self.name))
    }

    /// Run a program in the node; panic when it fails.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8_lossy(&run_ok(self.command(program).args(args)).stdout).into_owned()
    }

    /// Run a program in the node with `input` on its stdin; panic when it
    /// fails.
    pub fn ok_with_input(&self, program: &str, args: &[&str], input: &str) -> String {
        let out = crate::util::run_ok_with_input(self.command(program).args(args), input);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pcs ARGS` in the node; panic when it fails.
    pub fn pcs(&self, args: &[&str]) -> String {
        self.ok("pcs", args)
    }

    /// `crm_mon -1 --output-as=xml`.
    pub fn crm_mon_xml(&self) -> String {
        String::from_utf8_lossy(&self.output("crm_mon", &["-1", "--output-as=xml"]).stdout)
            .into_owned()
    }

    /// The node's mount table.
    pub fn mountinfo(&self) -> String {
        fs::read_to_string(format!("/proc/{}/mountinfo", self.init_pid)).unwrap_or_default()
    }

    /// Whether something is mounted at `dir` in the node.
    pub fn is_mounted(&self, dir: &Path) -> bool {
        let want = dir.to_string_lossy();
        self.mountinfo()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&want))
    }

    /// The agents' log lines (Pacemaker hands them HA_LOGFILE).
    pub fn pacemaker_log(&self) -> String {
        fs::read_to_string(self.dir.join("log/pacemaker.log")).unwrap_or_default()
    }

    /// Crash the node: SIGKILL its init; the kernel ends every process of
    /// its PID namespace and its mounts go with its mount namespace.
    pub fn crash(&mut self) {
        if self.init_pid != 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.init_pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut c) = self.unshare.take() {
            let _ = c.wait();
        }
        self.init_pid = 0;
    }

    /// Stop the node cleanly (Pacemaker stops its resources first).
    pub fn stop(&mut self) {
        if self.init_pid == 0 {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.init_pid as i32);
        let t = std::time::Instant::now();
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let gone = wait_until(Duration::from_secs(150), Duration::from_millis(100), || {
            !Path::new(&format!("/proc/{}", self.init_pid)).exists()
                || fs::read_to_string(format!("/proc/{}/stat", self.init_pid))
                    .is_ok_and(|s| s.contains(") Z "))
        });
        if !gone {
            eprintln!("node {} did not stop in 150 s; killing it", self.name);
        }
        self.crash();
        eprintln!("node {}: stopped after {:?}", self.name, t.elapsed());
    }
}

/// A cluster of `n` nodes.
pub struct Cluster {
    /// The nodes, n1, n2, ...
    pub nodes: Vec<Node>,
    /// The switch namespace holding the bridge.
    pub switch: String,
    /// The directory holding the handoff provider seen by the nodes.
    pub provider: PathBuf,
    scratch: Scratch,
    token_ms: u32,
    sbin_extra: Option<PathBuf>,
    /// Grace seconds of each node's own NFS server, when the nodes run one.
    node_nfs: Option<u32>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

impl Cluster {
    /// Create the nodes' namespaces and directories and start them.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, 1000, None)
    }

    /// Like `start`, with a corosync token timeout and an optional
    /// directory of extra programs overlaid on each node's /usr/sbin
    /// (fence agents).
    pub fn start_with(n: usize, token_ms: u32, sbin_extra: Option<PathBuf>) -> Self {
        Self::start_full(n, token_ms, sbin_extra, None)
    }

    fn start_full(
        n: usize,
        token_ms: u32,
        sbin_extra: Option<PathBuf>,
        node_nfs: Option<u32>,
    ) -> Self {
        assert!((1..=9).contains(&n));
        let scratch = Scratch::new("cluster");
        let tag = format!(
            "hf{}c{}",
            std::process::id() % 100000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("{tag}sw");
        crate::util::stage_provider(&scratch.join("provider"));
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "set", "lo", "up"]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        // The switch is also the clients' host on the cluster network.
        ip(&["-n", &switch, "addr", "add", "192.0.2.250/24", "dev", "br0"]);
        let mut nodes = Vec::new();
        for i in 1..=n {
            let name = format!("n{i}");
            let netns = format!("{tag}{name}");
            let addr = format!("192.0.2.{}", 10 + i);
            ip(&["netns", "add", &netns]);
            ip(&["-n", &netns, "link", "set", "lo", "up"]);
            ip(&[
                "link",
                "add",
                "eth0",
                "netns",
                &netns,
                "type",
                "veth",
                "peer",
                "name",
                &format!("p{i}"),
                "netns",
                &switch,
            ]);
            ip(&[
                "-n",
                &switch,
                "link",
                "set",
                &format!("p{i}"),
                "master",
                "br0",
                "up",
            ]);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &netns, "link", "set", "eth0", "up"]);
            nodes.push(Node {
                name,
                addr,
                netns,
                dir: scratch.join(&format!("n{i}")),
                unshare: None,
                init_pid: 0,
            });
        }
        let mut c = Cluster {
            nodes,
            switch,
            provider: scratch.join("provider"),
            scratch,
            token_ms,
            sbin_extra,
            node_nfs: None,
        };
        c.node_nfs = node_nfs;
        for i in 0..n {
            c.prepare(i);
            c.boot(i);
        }
        c
    }

    /// Like `start`, with each node running its own NFS server (rpcbind,
    /// statd, mountd, nfsd with `grace` seconds of grace), as a distribution
    /// starts it at boot: for node-wide export groups. Needs a kernel with
    /// nfsd (the VM's).
    pub fn start_with_nfs(n: usize, grace: u32) -> Self {
        Self::start_full(n, 1000, None, Some(grace))
    }

    /// The scratch directory of the cluster.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    fn corosync_conf(&self) -> String {
        let mut s = format!(
            "totem {{\n    version: 2\n    cluster_name: handoff\n    transport: knet\n    crypto_cipher: none\n    crypto_hash: none\n    token: {}\n}}\nnodelist {{\n",
            self.token_ms
        );
        for (i, n) in self.nodes.iter().enumerate() {
            s += &format!(
                "    node {{\n        name: {}\n        nodeid: {}\n        ring0_addr: {}\n    }}\n",
                n.name,
                i + 1,
                n.addr
            );
        }
        s += "}\nquorum {\n    provider: corosync_votequorum\n";
        if self.nodes.len() == 2 {
            s += "    two_node: 1\n";
        }
        s += "}\nlogging {\n    to_logfile: yes\n    logfile: /var/log/pacemaker/corosync.log\n    to_stderr: yes\n    to_syslog: no\n    timestamp: on\n}\n";
        s
    }

    /// Fresh state directories, corosync.conf and a seeded CIB for node i.
    fn prepare(&self, i: usize) {
        let d = &self.nodes[i].dir;
        let _ = fs::remove_dir_all(d);
        for sub in ["etc-corosync", "var-lib-corosync", "log"] {
            fs::create_dir_all(d.join(sub)).expect("node dir");
        }
        for sub in ["cib", "pengine", "blackbox", "cores", "bundles"] {
            fs::create_dir_all(d.join("var-lib-pacemaker").join(sub)).expect("node dir");
        }
        fs::write(d.join("etc-corosync/corosync.conf"), self.corosync_conf())
            .expect("corosync.conf");
        // A seeded CIB: no fencing unless a test adds it, and a 2 s
        // dc-deadtime instead of 20 s.
        let cib = d.join("var-lib-pacemaker/cib/cib.xml");
        let empty = run_ok(Command::new("cibadmin").arg("--empty"));
        fs::write(&cib, &empty.stdout).expect("cib.xml");
        for (k, v) in [
            ("stonith-enabled", "false"),
            ("dc-deadtime", "2s"),
            ("cluster-recheck-interval", "1min"),
        ] {
            run_ok(Command::new("crm_attribute").env("CIB_file", &cib).args([
                "--type",
                "crm_config",
                "--name",
                k,
                "--update",
                v,
            ]));
        }
        run_ok(
            Command::new("chown")
                .args(["-R", "hacluster:haclient"])
                .arg(d.join("var-lib-pacemaker"))
                .arg(d.join("log")),
        );
        run_ok(Command::new("chmod").arg("600").arg(&cib));
    }

    /// Start node i (its namespaces, corosync and pacemakerd).
    pub fn boot(&mut self, i: usize) {
        let node_bin = crate::util::agent_bin("handoff-node");
        let n = &self.nodes[i];
        let mut cmd = Command::new("setsid");
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("PCMK_logfile", "/var/log/pacemaker/pacemaker.log")
            .env("PCMK_logfacility", "none")
            .env("PCMK_debug", "no")
            .envs(self.node_nfs.map(|g| ("HANDOFF_NODE_NFS", g.to_string())))
            .args(["ip", "netns", "exec", &n.netns])
            .args([
                "unshare",
                "--mount",
                "--uts",
                "--ipc",
                "--pid",
                "--fork",
                "--mount-proc",
                "--",
            ])
            .arg(&node_bin)
            .arg(&n.name)
            .arg(&n.dir)
            .arg(&self.provider);
        if let Some(extra) = &self.sbin_extra {
            cmd.arg(extra);
        }
        let log = fs::File::create(n.dir.join("init.log")).expect("init.log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn node");
        let unshare_pid = child.id();
        let alive = n.dir.join("alive");
        let mut init_pid = 0;
        // Under emulation, with the node's own NFS server to start first,
        // a node takes seconds to come up.
        let up = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
            init_pid =
                fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
                    .unwrap_or(0);
            init_pid != 0 && alive.exists()
        });
        assert!(
            up,
            "node {} did not start; its {}:\n{}",
            n.name,
            n.dir.join("init.log").display(),
            fs::read_to_string(n.dir.join("init.log")).unwrap_or_default()
        );
        let n = &mut self.nodes[i];
        n.unshare = Some(child);
        n.init_pid = init_pid;
    }

    /// Restart a crashed or stopped node with its state as it was.
    pub fn reboot(&mut self, i: usize) {
        self.nodes[i].stop();
        self.boot(i);
    }

    /// Wait until every running node sees all running nodes online, a DC
    /// and quorum.
    pub fn wait_online(&self, timeout: Duration) {
        let running: Vec<&Node> = self.nodes.iter().filter(|n| n.running()).collect();
        let ok = wait_until(timeout, Duration::from_millis(200), || {
            running.iter().all(|n| {
                let xml = n.crm_mon_xml();
                xml.contains("with_quorum=\"true\"")
                    && running.iter().all(|m| {
                        xml.contains(&format!("<node name=\"{}\" id=\"", m.name))
                            && node_online(&xml, &m.name)
                    })
            })
        });
        if !ok {
            let first = running.first().map(|n| n.crm_mon_xml()).unwrap_or_default();
            panic!("cluster not online within {timeout:?}:\n{first}");
        }
    }

    /// A command run as a client on the cluster network (in the switch
    /// namespace, 192.0.2.250).
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.switch, program]);
        c
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// Index of a node by name.
    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .expect("node")
    }

    /// Make a crashed node's interface look like a dead machine's: down,
    /// and back to its base address only when it "powers on" again.
    pub fn quiet_nic(&self, name: &str) {
        let n = self.node(name);
        run_ok(Command::new("ip").args(["-n", &n.netns, "link", "set", "eth0", "down"]));
        run_ok(Command::new("ip").args(["-n", &n.netns, "addr", "flush", "dev", "eth0"]));
        run_ok(Command::new("ip").args([
            "-n",
            &n.netns,
            "addr",
            "add",
            &format!("{}/24", n.addr),
            "dev",
            "eth0",
        ]));
    }

    /// Bring a quieted interface back (before the node boots again).
    pub fn nic_up(&self, name: &str) {
        let n = self.node(name);
        run_ok(Command::new("ip").args(["-n", &n.netns, "link", "set", "eth0", "up"]));
    }

    /// The first running node.
    pub fn any(&self) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.running())
            .expect("a running node")
    }

    /// The node a resource is started on, from crm_mon.
    pub fn location(&self, rsc: &str) -> Option<String> {
        resource_node(&self.any().crm_mon_xml(), rsc)
    }

    /// Wait until a resource runs on `node` (or stops everywhere for None).
    pub fn wait_location(&self, rsc: &str, node: Option<&str>, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || {
            self.location(rsc).as_deref() == node
        })
    }

    /// Wait until a resource runs on `node`, for as long as the cluster
    /// makes progress (see `wait_located`), at most an hour.
    pub fn wait_location_progress(&self, rsc: &str, node: &str, stall: Duration) -> bool {
        wait_located(
            || self.any().crm_mon_xml(),
            rsc,
            node,
            stall,
            Duration::from_secs(3600),
            Duration::from_millis(200),
        )
    }
}

/// Wait until `crm_mon` (a crm_mon XML reader) shows `rsc` on `node`, for
/// as long as the cluster makes progress: false once it showed no change
/// for `stall` (nothing started, stopped or failed), or after `cap` (a
/// cluster that keeps changing without getting there); it looks every
/// `poll`. A slower machine takes longer but keeps moving, so it waits
/// longer.
pub fn wait_located(
    mut crm_mon: impl FnMut() -> String,
    rsc: &str,
    node: &str,
    stall: Duration,
    cap: Duration,
    poll: Duration,
) -> bool {
    let cap = std::time::Instant::now() + cap;
    let mut last = String::new();
    let mut changed = std::time::Instant::now();
    loop {
        let xml = crm_mon();
        if resource_node(&xml, rsc).as_deref() == Some(node) {
            return true;
        }
        // The state of every resource and node, without the clock.
        let state: String = xml
            .lines()
            .filter(|l| !l.contains("<last_update "))
            .collect();
        if state != last {
            last = state;
            changed = std::time::Instant::now();
        }
        if changed.elapsed() >= stall || std::time::Instant::now() >= cap {
            return false;
        }
        std::thread::sleep(poll);
    }
}

/// Whether crm_mon XML shows a node online.
pub fn node_online(xml: &str, name: &str) -> bool {
    xml.lines()
        .any(|l| l.contains(&format!("<node name=\"{name}\" ")) && l.contains("online=\"true\""))
}

/// The node a started resource runs on, from crm_mon XML.
pub fn resource_node(xml: &str, rsc: &str) -> Option<String> {
    let mut lines = xml.lines();
    while let Some(l) = lines.next() {
        if l.contains(&format!("<resource id=\"{rsc}\" ")) && l.contains("role=\"Started\"") {
            let next = if l.contains("nodes_running_on=\"0\"") {
                return None;
            } else {
                lines.next()?
            };
            let start = next.find("name=\"")? + 6;
            let end = next[start..].find('"')? + start;
            return Some(next[start..end].to_owned());
        }
    }
    None
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        for n in &self.nodes {
            let _ = Command::new("ip").args(["netns", "del", &n.netns]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
    }
}
