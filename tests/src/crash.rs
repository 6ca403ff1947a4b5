//! Node crashes with one kernel per node: two node VMs and a client VM
//! (see fleet.rs), a cluster network and a service network of their own,
//! shared disks, corosync and Pacemaker on both nodes configured with the
//! README's pcs commands, and real fencing: sbd on a small shared disk
//! with the kernel's softdog watchdog, fence_sbd as the stonith device.
//!
//! Exports A and B (virtual servers) and D (the ClusterLabs group:
//! Filesystem, exportfs, IPaddr2 on the node's own NFS server) run on node1,
//! C (a virtual server) on node2. The client writes a journal of fsynced
//! records over NFSv3 and NFSv4.2 to A, B, C and D, holds a lock on each
//! over both, and keeps locking on C. Then node1, for each kind of crash:
//!
//! - `poweroff`: its qemu ends at once;
//! - `hang`: every process in it stops (SIGSTOP); its kernel goes on and
//!   still holds the disks, its watchdog is no longer fed;
//! - `split`: its cluster cable is pulled; it keeps its disks and the
//!   service network, so it must be fenced before node2 mounts A and B.
//!
//! After each, node2 serves A, B and D; the clients get their locks back
//! (A and B) or not (D: nothing tells them); every acknowledged record
//! reads back; fsck of A, B and D is clean; C's clients never stop; node1
//! boots again and rejoins without taking anything back (`rejoin`), and the
//! groups move back for the next crash (after the last, nothing needs
//! them back).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::fleet::{Fleet, Spec, Vm};
use crate::guest::cluster::{export_params, fs_params, server_params, server_vip_params};
use crate::vm::{Check, Metric};

/// One export of the scenarios.
#[derive(Clone, Copy, Debug)]
pub struct Export {
    /// Short name.
    pub id: &'static str,
    /// Its disk inside the nodes.
    pub dev: &'static str,
    /// Its mount point on the nodes.
    pub dir: &'static str,
    /// Its address.
    pub vip: &'static str,
    /// Its virtual server's name (and the address's host name).
    pub name: &'static str,
    /// Its fsid.
    pub fsid: &'static str,
    /// Where it starts.
    pub home: &'static str,
    /// Whether it is the ClusterLabs group.
    pub clusterlabs: bool,
}

/// The exports, on disks vdb to vde (vda is sbd's).
pub const EXPORTS: [Export; 4] = [
    Export {
        id: "a",
        dev: "/dev/vdb",
        dir: "/srv/a",
        vip: "192.0.2.100",
        name: "nfs-a",
        fsid: "1",
        home: "node1",
        clusterlabs: false,
    },
    Export {
        id: "b",
        dev: "/dev/vdc",
        dir: "/srv/b",
        vip: "192.0.2.101",
        name: "nfs-b",
        fsid: "2",
        home: "node1",
        clusterlabs: false,
    },
    Export {
        id: "c",
        dev: "/dev/vdd",
        dir: "/srv/c",
        vip: "192.0.2.102",
        name: "nfs-c",
        fsid: "3",
        home: "node2",
        clusterlabs: false,
    },
    Export {
        id: "d",
        dev: "/dev/vde",
        dir: "/srv/d",
        vip: "192.0.2.103",
        name: "nfs-d",
        fsid: "4",
        home: "node1",
        clusterlabs: true,
    },
];

/// sbd's disk inside the nodes.
const SBD: &str = "/dev/vda";
/// The grace time of the virtual servers, seconds.
const GRACE: &str = "30";
/// How long the cluster may show no change before a wait gives up.
const STALL: Duration = Duration::from_secs(180);

/// A virtual server's parameters here: the suite's short reclaim window,
/// but the agent's default NFSv4 lease (90 s). The Linux NFSv4.1 client
/// gives up a connection one lease after its server went quiet (its TCP
/// user timeout) and reconnects on its own SYN back-off, which no tickle
/// reaches: a crash's outage (fencing, then the takeover; about a minute
/// here) must stay within the lease for the taking node's tickles to find
/// the connection. With the lease at 30 s, NFSv4.2 writers resumed 0.6 to
/// 9 s after their address.
fn crash_server_params(e: &Export) -> Vec<String> {
    let mut p = server_params(e.name, e.dir, e.vip, "eth1", GRACE);
    p.retain(|x| !x.starts_with("lease_time="));
    p
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

/// The configuration, as pcs argument lists: the README's groups (a
/// virtual server for A, B and C, on the service network's eth1), the
/// ClusterLabs group for D, and fencing through sbd.
pub fn pcs_commands() -> Vec<Vec<String>> {
    let mut all = vec![
        words(&["resource", "defaults", "update", "resource-stickiness=100"]),
        words(&["property", "set", "stonith-enabled=true"]),
        words(&["property", "set", "stonith-timeout=300s"]),
        // In a split each node fences the other, and the first to write
        // its poison pill wins. The test's split cuts node1 off, and node2
        // must win: fencing node2 waits 120 s, far longer than node2 takes
        // to fence node1 even on emulated machines (66 s measured here).
        // A site chooses its own survivor (priority-fencing-delay).
        words(&[
            "stonith",
            "create",
            "fence_sbd",
            "fence_sbd",
            &format!("devices={SBD}"),
            "pcmk_delay_base=node1:0s;node2:120s",
            "op",
            "monitor",
            "interval=60s",
            "timeout=120s",
            "start",
            "timeout=120s",
        ]),
    ];
    for e in EXPORTS {
        let grp = format!("export_{}", e.id);
        let fs = fs_params(e.dev, e.dir);
        let members: Vec<(&str, &str, Vec<String>)> = if e.clusterlabs {
            vec![
                ("fs", "ocf:heartbeat:Filesystem", fs),
                (
                    "export",
                    "ocf:heartbeat:exportfs",
                    export_params(None, e.dir, e.fsid),
                ),
                (
                    "vip",
                    "ocf:heartbeat:IPaddr2",
                    vec![
                        format!("ip={}", e.vip),
                        "cidr_netmask=24".into(),
                        "nic=eth1".into(),
                    ],
                ),
            ]
        } else {
            vec![
                ("fs", "ocf:handoff:fs", fs),
                ("server", "ocf:handoff:nfs-server", crash_server_params(&e)),
                (
                    "export",
                    "ocf:handoff:export",
                    export_params(Some(e.name), e.dir, e.fsid),
                ),
                ("vip", "ocf:handoff:vip", server_vip_params(e.name, e.vip)),
            ]
        };
        for (member, agent, params) in members {
            let mut args = words(&["resource", "create"]);
            args.push(format!("{}_{member}", e.id));
            args.push(agent.to_owned());
            args.extend(params);
            // Timeouts for emulated machines, where a shell agent's start
            // takes seconds and a loaded node tens of them (IPaddr2 ran out
            // of its 20 s default here).
            args.extend(words(&[
                "op",
                "monitor",
                "interval=10s",
                "timeout=60s",
                "start",
                "timeout=120s",
                "stop",
                "timeout=120s",
                "--group",
                &grp,
            ]));
            all.push(args);
        }
        all.push(words(&[
            "constraint",
            "location",
            &grp,
            "prefers",
            &format!("{}=50", e.home),
        ]));
    }
    all
}

/// Checks and measurements, printed as they come.
#[derive(Default)]
pub struct Report {
    /// Every check.
    pub checks: Vec<Check>,
    /// Every measurement.
    pub metrics: Vec<Metric>,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) -> bool {
        // The whole detail of a failure; a line of it otherwise.
        let shown = if ok {
            detail.as_ref().lines().next().unwrap_or_default()
        } else {
            detail.as_ref()
        };
        eprintln!("{} {name}: {shown}", if ok { "ok  " } else { "FAIL" });
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.as_ref().into(),
        });
        ok
    }

    fn metric(&mut self, name: &str, value: f64, unit: &str) {
        eprintln!("  {name:<48} {value:>12.2} {unit}");
        self.metrics.push(Metric {
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }
}

/// The topology.
pub struct Crash {
    fleet: Fleet,
    /// node1, node2 (None while powered off).
    nodes: [Option<Vm>; 2],
    client: Vm,
    disks: Vec<PathBuf>,
    cib: String,
    /// Findings.
    pub report: Report,
    began: Instant,
    /// The crashes so far: their lock holders keep holding.
    tags: Vec<String>,
}

fn node_spec(i: usize, disks: &[PathBuf]) -> Spec {
    Spec {
        name: format!("node{}", i + 1),
        memory_mib: 1536,
        cpus: 2,
        nics: vec![
            (format!("n{}c", i + 1), format!("52:54:00:0c:00:0{}", i + 1)),
            (format!("n{}s", i + 1), format!("52:54:00:05:00:0{}", i + 1)),
        ],
        disks: disks.to_vec(),
    }
}

fn hosts() -> String {
    let mut s = String::from(
        "127.0.0.1 localhost\n192.0.2.11 node1\n192.0.2.12 node2\n192.0.2.50 client\n",
    );
    for e in EXPORTS {
        s.push_str(&format!("{} {}\n", e.vip, e.name));
    }
    s
}

fn corosync_conf() -> String {
    // A 5 s token: three emulated machines on two cores must not look dead.
    let mut s = String::from(
        "totem {\n    version: 2\n    cluster_name: crash\n    transport: knet\n    crypto_cipher: none\n    crypto_hash: none\n    token: 5000\n}\nnodelist {\n",
    );
    for i in 1..=2 {
        s.push_str(&format!(
            "    node {{\n        name: node{i}\n        nodeid: {i}\n        ring0_addr: 198.51.100.1{i}\n    }}\n"
        ));
    }
    s.push_str("}\nquorum {\n    provider: corosync_votequorum\n    two_node: 1\n}\nlogging {\n    to_logfile: yes\n    logfile: /var/log/pacemaker/corosync.log\n    to_stderr: yes\n    to_syslog: no\n    timestamp: on\n}\n");
    s
}

/// Wait until `f` holds, checking every 250 ms; how long it took.
fn wait(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    None
}

/// The node a resource is started on, from crm_mon XML.
fn location(xml: &str, rsc: &str) -> Option<String> {
    crate::cluster::resource_node(xml, rsc)
}

impl Crash {
    /// Boot the three machines, make the cluster and start the groups.
    pub fn new(scratch: &Path, cib: String) -> Crash {
        let began = Instant::now();
        let fleet = Fleet::new(scratch, &["brc", "brs"]);
        for (tap, br) in [
            ("n1c", "brc"),
            ("n2c", "brc"),
            ("n1s", "brs"),
            ("n2s", "brs"),
            ("cls", "brs"),
        ] {
            fleet.net.tap(tap, br);
        }
        let mut disks = vec![scratch.join("sbd.img")];
        let f = std::fs::File::create(&disks[0]).expect("sbd disk");
        f.set_len(16 << 20).expect("sbd disk size");
        for e in EXPORTS {
            let p = scratch.join(format!("{}.img", e.id));
            let f = std::fs::File::create(&p).expect("disk");
            f.set_len(256 << 20).expect("disk size");
            crate::util::run_ok(
                std::process::Command::new("mkfs.ext4")
                    .args(["-q", "-F"])
                    .arg(&p),
            );
            disks.push(p);
        }
        let client = fleet.boot(&Spec {
            name: "client".into(),
            memory_mib: 1024,
            cpus: 1,
            nics: vec![("cls".into(), "52:54:00:05:00:32".into())],
            disks: Vec::new(),
        });
        let mut c = Crash {
            fleet,
            nodes: [None, None],
            client,
            disks,
            cib,
            report: Report::default(),
            began,
            tags: Vec::new(),
        };
        c.report.metric(
            "crash_boot_client_ms",
            c.began.elapsed().as_secs_f64() * 1000.0,
            "ms",
        );
        c.boot_node(0, true);
        c.boot_node(1, false);
        c
    }

    fn node(&self, i: usize) -> &Vm {
        self.nodes[i].as_ref().expect("the node is running")
    }

    /// Boot node `i`, set it up and start its cluster stack; `first`
    /// creates sbd's disk layout.
    fn boot_node(&mut self, i: usize, first: bool) {
        let vm = self.fleet.boot(&node_spec(i, &self.disks));
        let n = i + 1;
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec![
                "ip",
                "addr",
                "add",
                &format!("198.51.100.1{n}/24"),
                "dev",
                "eth0",
            ],
            vec!["ip", "link", "set", "eth0", "up"],
            vec![
                "ip",
                "addr",
                "add",
                &format!("192.0.2.1{n}/24"),
                "dev",
                "eth1",
            ],
            vec!["ip", "link", "set", "eth1", "up"],
        ] {
            vm.ok(&args);
        }
        vm.write("/etc/hosts", &hosts());
        // libqb's IPC files.
        vm.ok(&["mkdir", "-p", "/dev/shm"]);
        vm.ok(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "mode=1777",
            "tmpfs",
            "/dev/shm",
        ]);
        vm.ok(&[
            "mkdir",
            "-p",
            "/etc/corosync",
            "/var/log/pacemaker",
            "/usr/lib/ocf/resource.d/handoff",
        ]);
        vm.write("/etc/corosync/corosync.conf", &corosync_conf());
        for a in crate::cluster::AGENTS {
            vm.ok(&[
                "ln",
                "-sf",
                &format!("/handoff/bin/{a}"),
                &format!("/usr/lib/ocf/resource.d/handoff/{a}"),
            ]);
        }
        vm.ok(&[
            "chown",
            "-R",
            "hacluster:haclient",
            "/var/log/pacemaker",
            "/var/lib/pacemaker",
        ]);
        // The node's own NFS server, as a distribution starts it, for
        // the ClusterLabs group.
        for args in [
            vec![
                "mkdir",
                "-p",
                "/var/lib/nfs/sm",
                "/var/lib/nfs/sm.bak",
                "/var/lib/nfs/v4recovery",
                "/run/rpcbind",
            ],
            vec!["rpcbind", "-w"],
            vec!["rpc.statd", "--no-notify"],
            vec!["rpc.mountd"],
            vec!["rpc.nfsd", "--grace-time", "20", "--lease-time", "20", "8"],
        ] {
            vm.ok(&args);
        }
        if first {
            vm.ok(&["sbd", "-d", SBD, "-1", "10", "-4", "20", "create"]);
        }
        // A fenced node's slot still says so: a node that boots again
        // clears it (sbd would otherwise refuse to start).
        let _ = vm.run(&["sbd", "-d", SBD, "message", &format!("node{n}"), "clear"]);
        vm.ok(&["sbd", "-d", SBD, "-W", "-w", "/dev/watchdog", "watch"]);
        for ex in EXPORTS {
            vm.ok(&["mkdir", "-p", ex.dir]);
        }
        vm.spawn(&["corosync", "-f"], "/var/log/pacemaker/corosync.stdout");
        vm.spawn(&["pacemakerd"], "/var/log/pacemaker/pacemakerd.stdout");
        self.nodes[i] = Some(vm);
    }

    /// The tails of the nodes' cluster logs, for a failure's reader.
    fn node_logs(&self) -> String {
        let mut out = String::new();
        for vm in self.nodes.iter().flatten() {
            for f in ["corosync.stdout", "pacemakerd.stdout", "pacemaker.log"] {
                let d = vm.run(&["tail", "-n", "60", &format!("/var/log/pacemaker/{f}")]);
                out.push_str(&format!(
                    "== {} {f}:\n{}{}\n",
                    vm.spec.name, d.stdout, d.stderr
                ));
            }
        }
        out
    }

    /// The first running node's crm_mon XML.
    fn crm_mon(&self) -> String {
        for vm in self.nodes.iter().flatten() {
            let d = vm.run_for(
                &["crm_mon", "-1", "--output-as=xml"],
                Duration::from_secs(60),
            );
            if d.code == 0 {
                return d.stdout;
            }
        }
        String::new()
    }

    /// Wait until `rsc` runs on `node`, while the cluster keeps changing.
    fn located(&self, rsc: &str, node: &str) -> bool {
        crate::cluster::wait_located(
            || self.crm_mon(),
            rsc,
            node,
            STALL,
            Duration::from_secs(1800),
            Duration::from_millis(500),
        )
    }

    /// Form the cluster, load the configuration, wait for every group.
    pub fn form(&mut self) -> bool {
        let t = Instant::now();
        let online = wait(Duration::from_secs(240), || {
            let xml = self.crm_mon();
            xml.contains("with_quorum=\"true\"")
                && crate::cluster::node_online(&xml, "node1")
                && crate::cluster::node_online(&xml, "node2")
        });
        self.report.metric(
            "crash_cluster_online_ms",
            t.elapsed().as_secs_f64() * 1000.0,
            "ms",
        );
        if !self.report.check(
            "crash: two node VMs form a cluster with quorum",
            online.is_some(),
            format!("{}\n{}", self.crm_mon(), self.node_logs()),
        ) {
            return false;
        }
        let node1 = self.node(0);
        node1.write("/tmp/cib.xml", &self.cib);
        // The sections pcs made on the host, into the live CIB.
        for (scope, verb, under) in [
            ("resources", "--replace", "resources"),
            ("constraints", "--replace", "constraints"),
            ("rsc_defaults", "--create", "configuration"),
            ("crm_config", "--replace", "crm_config"),
        ] {
            let (open, close) = (format!("<{scope}"), format!("</{scope}>"));
            let section = self.cib.find(&open).and_then(|a| {
                self.cib[a..]
                    .find(&close)
                    .map(|b| &self.cib[a..a + b + close.len()])
            });
            if let Some(section) = section {
                node1.ok(&["cibadmin", verb, "--scope", under, "--xml-text", section]);
            }
        }
        let started = EXPORTS
            .iter()
            .all(|e| self.located(&format!("{}_vip", e.id), e.home));
        self.report.check(
            "crash: the groups start where they prefer (A, B, D on node1, C on node2)",
            started,
            self.crm_mon(),
        )
    }

    fn client_ok(&self, args: &[&str]) -> String {
        self.client.ok(args)
    }

    /// Mount every export over NFSv3 and NFSv4.2 on the client.
    pub fn mount_all(&mut self) {
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "addr", "add", "192.0.2.50/24", "dev", "eth0"],
            vec!["ip", "link", "set", "eth0", "up"],
            vec![
                "mkdir",
                "-p",
                "/var/lib/nfs/sm",
                "/var/lib/nfs/sm.bak",
                "/run/rpcbind",
            ],
            vec!["rpcbind", "-w"],
            vec!["rpc.statd", "--no-notify"],
        ] {
            self.client_ok(&args);
        }
        self.client.write("/etc/hosts", &hosts());
        for e in EXPORTS {
            for (v, opts) in [("3", "vers=3,proto=tcp"), ("4", "vers=4.2,proto=tcp")] {
                let at = format!("/mnt/{}{v}", e.id);
                self.client_ok(&["mkdir", "-p", &at]);
                self.client_ok(&[
                    "mount.nfs",
                    &format!("{}:{}", e.vip, e.dir),
                    &at,
                    "-o",
                    opts,
                ]);
            }
        }
    }
}

/// A file the client holds a lock on.
struct Holder {
    /// Over NFSv4.2 (else NFSv3).
    v4: bool,
    /// Its inode number, the same on the server.
    inode: u64,
}

/// What the client runs for one crash: a journal and a lock holder per
/// export and version, lock loops on C.
/// When each step after a crash was seen, from the crash on (None: not
/// within the cap); per moved export where there is a `Vec`.
struct Watched {
    node1_end: Option<Duration>,
    fenced: Option<Duration>,
    mounted: Vec<Option<Duration>>,
    answered: Vec<Option<Duration>>,
    back: Vec<Option<Duration>>,
}

struct Load {
    tag: String,
    stop: String,
}

impl Crash {
    fn start_load(&self, tag: &str) -> Load {
        let stop = format!("/tmp/stop-{tag}");
        let _ = self.client.run(&["rm", "-f", &stop]);
        // What waits in the kernel, on the client and on node2, for a
        // reader of a pause.
        self.client.spawn(
            &[
                "/handoff/bin/handoff-vmtest",
                "--watch",
                &format!("/tmp/samples-{tag}"),
                &stop,
            ],
            "/dev/null",
        );
        self.node(1).spawn(
            &[
                "/handoff/bin/handoff-vmtest",
                "--watch",
                &format!("/tmp/samples-{tag}"),
                &format!("/tmp/stop-{tag}"),
            ],
            "/dev/null",
        );
        for e in EXPORTS {
            for v in ["3", "4"] {
                let dir = format!("/mnt/{}{v}", e.id);
                self.client.spawn(
                    // One file per version: the two mounts are one export.
                    &[
                        "/handoff/bin/handoff-vmtest",
                        "--lock",
                        "journal",
                        &format!("{dir}/journal-{tag}-v{v}"),
                        &stop,
                    ],
                    &format!("/tmp/journal-{tag}-{}{v}.out", e.id),
                );
                self.client.spawn(
                    &[
                        "/handoff/bin/handoff-vmtest",
                        "--lock",
                        "hold",
                        &format!("{dir}/lock-{tag}-v{v}"),
                    ],
                    &format!("/tmp/hold-{tag}-{}{v}.out", e.id),
                );
            }
        }
        for v in ["3", "4"] {
            self.client.spawn(
                &[
                    "/handoff/bin/handoff-vmtest",
                    "--lock",
                    "loop",
                    &format!("/mnt/c{v}/loop-{tag}-v{v}"),
                    &stop,
                ],
                &format!("/tmp/loop-{tag}-c{v}.out",),
            );
        }
        Load {
            tag: tag.into(),
            stop,
        }
    }

    /// How far the client's clock is ahead of this machine's, in ms (its
    /// clock starts from the emulated RTC, to the second).
    fn client_clock_offset(&self) -> f64 {
        let before = SystemTime::now();
        let out = self.client.run(&["date", "+%s.%N"]).stdout;
        let after = SystemTime::now();
        let epoch = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        out.trim().parse::<f64>().map_or(0.0, |guest| {
            (guest - (epoch(before) + epoch(after)) / 2.0) * 1000.0
        })
    }

    /// The files whose locks the client holds on `e` and must get back:
    /// every crash's so far on a handoff export (its holders keep
    /// holding), this crash's on the ClusterLabs one (it lost the others).
    fn holders(&self, e: &Export) -> Vec<Holder> {
        let tags = if e.clusterlabs {
            &self.tags[self.tags.len().saturating_sub(1)..]
        } else {
            &self.tags[..]
        };
        let paths: Vec<(bool, String)> = tags
            .iter()
            .flat_map(|t| ["3", "4"].map(|v| (v == "4", format!("/mnt/{}{v}/lock-{t}-v{v}", e.id))))
            .collect();
        let mut args = vec!["stat", "-c", "%i"];
        args.extend(paths.iter().map(|(_, p)| p.as_str()));
        let out = self.client.run(&args).stdout;
        paths
            .iter()
            .zip(out.lines())
            .filter_map(|((v4, _), l)| {
                Some(Holder {
                    v4: *v4,
                    inode: l.trim().parse().ok()?,
                })
            })
            .collect()
    }

    /// How many of `holders` node `i` holds no lock for: an NFSv3 lock is a
    /// POSIX line on its file; an NFSv4 client's can hide under its
    /// delegation, so either counts.
    fn missing(&self, i: usize, dev: &str, holders: &[Holder]) -> usize {
        let lines = self.lock_lines(i, dev);
        let on = |inode: u64, v4: bool| {
            lines.iter().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let kind_ok = w.contains(&"POSIX") || (v4 && w.contains(&"DELEG"));
                kind_ok
                    && w.iter().any(|x| {
                        x.rsplit(':').next().and_then(|n| n.parse::<u64>().ok()) == Some(inode)
                            && x.matches(':').count() == 2
                    })
            })
        };
        holders.iter().filter(|h| !on(h.inode, h.v4)).count()
    }

    /// Byte-range locks (POSIX) on `dev` on node `i`.
    fn posix_on(&self, i: usize, dev: &str) -> usize {
        self.lock_lines(i, dev)
            .iter()
            .filter(|l| l.contains(" POSIX "))
            .count()
    }

    /// Byte-range locks and delegations on `dev` on node `i` (an NFSv4
    /// client's lock can hide under its write delegation).
    fn locks_on(&self, i: usize, dev: &str) -> usize {
        self.lock_lines(i, dev).len()
    }

    /// /proc/locks lines of `dev` on node `i`.
    fn lock_lines(&self, i: usize, dev: &str) -> Vec<String> {
        let Some(vm) = self.nodes[i].as_ref() else {
            return Vec::new();
        };
        let out = vm.run(&["stat", "-L", "-c", "%t:%T", dev]).stdout;
        let mut it = out
            .trim()
            .split(':')
            .map(|h| u32::from_str_radix(h, 16).unwrap_or(0));
        let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        let want = format!(" {maj:02x}:{min:02x}:");
        vm.run(&["cat", "/proc/locks"])
            .stdout
            .lines()
            .filter(|l| l.contains(&want))
            .map(str::to_owned)
            .collect()
    }

    /// Stop the load and read its summaries: (export id + version, JSON).
    fn finish_load(&self, load: &Load) -> Vec<(String, serde_json::Value)> {
        self.client.write(&load.stop, "");
        if let Some(n2) = self.nodes[1].as_ref() {
            n2.write(&load.stop, "");
        }
        std::thread::sleep(Duration::from_secs(3));
        let mut out = Vec::new();
        for name in EXPORTS
            .iter()
            .flat_map(|e| ["3", "4"].map(|v| format!("journal-{}-{}{v}", load.tag, e.id)))
            .chain(["3", "4"].map(|v| format!("loop-{}-c{v}", load.tag)))
        {
            let path = format!("/tmp/{name}.out");
            let text = wait(Duration::from_secs(120), || {
                self.client
                    .run(&["cat", &path])
                    .stdout
                    .trim_end()
                    .ends_with('}')
            })
            .map(|_| self.client.run(&["cat", &path]).stdout)
            .unwrap_or_default();
            let mut v = serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null);
            // The latencies over time are for plots; the checks show the rest.
            crate::timeline::take_series(&mut v);
            out.push((name, v));
        }
        out
    }

    /// Whether the client's ping of `vip` is answered.
    fn answers(&self, vip: &str) -> bool {
        self.client
            .run_for(
                &["ping", "-c", "1", "-W", "1", vip],
                Duration::from_secs(10),
            )
            .code
            == 0
    }

    /// One crash of node1 (`kind`), and what follows: node1 rejoins, and
    /// unless this is the `last` crash its groups move back. False when
    /// the cluster did not take over (nothing after it would mean
    /// anything).
    pub fn crash(&mut self, kind: &str, last: bool) -> bool {
        let tag = kind.to_owned();
        let load = self.start_load(&tag);
        self.tags.push(tag.clone());
        std::thread::sleep(Duration::from_secs(10));
        let moved: Vec<Export> = EXPORTS
            .iter()
            .copied()
            .filter(|e| e.home == "node1")
            .collect();
        let holders: Vec<Vec<Holder>> = moved.iter().map(|e| self.holders(e)).collect();
        let held_before: Vec<usize> = moved
            .iter()
            .zip(&holders)
            .map(|(e, h)| h.len() - self.missing(0, e.dev, h))
            .collect();
        let fenced_before = self.fencings_of_node1();
        for (k, e) in moved.iter().enumerate() {
            self.report.metric(
                &format!("{kind}_{}_locks_held_before", e.id),
                held_before[k] as f64,
                "locks",
            );
            self.report.metric(
                &format!("{kind}_{}_byte_range_locks_before", e.id),
                self.posix_on(0, e.dev) as f64,
                "locks",
            );
        }
        let offset = self.client_clock_offset();
        let t0 = Instant::now();
        let t0_wall = SystemTime::now();
        match kind {
            "poweroff" => {
                if let Some(vm) = self.nodes[0].as_mut() {
                    vm.power_off();
                }
            }
            "hang" => self.node(0).freeze(),
            "split" => self.fleet.net.cable("n1c", false),
            _ => {}
        }
        let w = self.watch(t0, &moved, &holders, &fenced_before.1);
        let Watched {
            node1_end,
            fenced,
            mounted,
            answered,
            back,
        } = w;
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
        self.report
            .metric(&format!("{kind}_node1_stopped_ms"), ms(node1_end), "ms");
        self.report
            .metric(&format!("{kind}_fencing_confirmed_ms"), ms(fenced), "ms");
        let slots = self.node(1).run(&["sbd", "-d", SBD, "list"]).stdout;
        self.report.check(
            &format!("{kind}: node2 fenced node1 through sbd"),
            fenced.is_some() && !fenced_before.0,
            format!(
                "{slots}{}",
                self.node(1)
                    .run(&["stonith_admin", "--history", "node1"])
                    .stdout
            ),
        );
        let first_mount = mounted.iter().flatten().min().copied();
        self.report.check(
            &format!("{kind}: node1 had stopped (its VM ended) before node2 mounted its disks"),
            node1_end.is_some() && first_mount.is_some_and(|m| node1_end.is_some_and(|s| s < m)),
            format!(
                "node1 ended at {:.1} s, first mount at {:.1} s",
                ms(node1_end) / 1000.0,
                ms(first_mount) / 1000.0
            ),
        );
        for (k, e) in moved.iter().enumerate() {
            self.report.metric(
                &format!("{kind}_{}_address_up_ms", e.id),
                ms(answered[k]),
                "ms",
            );
            self.report.check(
                &format!("{kind}: {} serves from node2", e.id.to_uppercase()),
                answered[k].is_some() && self.located(&format!("{}_vip", e.id), "node2"),
                "",
            );
            self.report
                .metric(&format!("{kind}_{}_locks_back_ms", e.id), ms(back[k]), "ms");
            let n = self.locks_on(1, e.dev);
            self.report.metric(
                &format!("{kind}_{}_locks_held_after", e.id),
                n as f64,
                "locks",
            );
            self.report.metric(
                &format!("{kind}_{}_byte_range_locks_after", e.id),
                self.posix_on(1, e.dev) as f64,
                "locks",
            );
            if !e.clusterlabs {
                self.report.check(
                    &format!(
                        "{kind}: the clients of {} hold their locks again on node2",
                        e.id.to_uppercase()
                    ),
                    back[k].is_some(),
                    format!(
                        "{} of {} held ({} before the crash); {n} lock lines: {}",
                        holders[k].len() - self.missing(1, e.dev, &holders[k]),
                        holders[k].len(),
                        held_before[k],
                        self.lock_lines(1, e.dev).join(" | ")
                    ),
                );
            }
        }
        if answered.iter().any(Option::is_none) {
            self.report.check(
                &format!("{kind}: the cluster's view"),
                false,
                format!("{}\n{}", self.crm_mon(), self.node_logs()),
            );
            return false;
        }
        self.check_load(kind, &load, &moved, &answered, (t0_wall, offset));
        self.fsck(kind, &moved);
        if kind == "split" {
            self.fleet.net.cable("n1c", true);
        }
        self.rejoin(kind, &moved, !last)
    }

    /// Watch from the crash on, all at once: node1's end, the fencing,
    /// node2's mounts, the addresses answering, the locks back.
    fn watch(
        &mut self,
        t0: Instant,
        moved: &[Export],
        holders: &[Vec<Holder>],
        fenced_before: &str,
    ) -> Watched {
        let mut w = Watched {
            node1_end: None,
            fenced: None,
            mounted: vec![None; moved.len()],
            answered: vec![None; moved.len()],
            back: vec![None; moved.len()],
        };
        // Caps, far above this machine's times (D, the slowest, settled
        // within 250 s), so that a machine emulating 3x slower still fits.
        let until = Instant::now() + Duration::from_secs(1500);
        loop {
            let now = t0.elapsed();
            if w.node1_end.is_none() && !self.nodes[0].as_mut().is_some_and(|vm| vm.running()) {
                w.node1_end = Some(now);
            }
            if w.fenced.is_none() {
                let (pill, history) = self.fencings_of_node1();
                if pill || history != *fenced_before {
                    w.fenced = Some(t0.elapsed());
                }
            }
            let mounts = self.node(1).run(&["cat", "/proc/mounts"]).stdout;
            for (k, e) in moved.iter().enumerate() {
                if w.mounted[k].is_none()
                    && mounts.lines().any(|l| l.split(' ').nth(1) == Some(e.dir))
                {
                    w.mounted[k] = Some(t0.elapsed());
                }
                if w.mounted[k].is_some() && w.answered[k].is_none() && self.answers(e.vip) {
                    w.answered[k] = Some(t0.elapsed());
                }
                if w.answered[k].is_some()
                    && w.back[k].is_none()
                    && self.missing(1, e.dev, &holders[k]) == 0
                {
                    w.back[k] = Some(t0.elapsed());
                }
            }
            // The ClusterLabs group's locks may never come back (nothing
            // tells its NFSv3 clients to reclaim, and its node's nfsd is
            // out of grace for the NFSv4 ones): it is given 30 s after its
            // address answered, past a client's reconnect back-off (3, 6
            // and 12 s) and a timed-out RPC's retry.
            let settled = moved.iter().enumerate().all(|(k, e)| {
                w.back[k].is_some()
                    || (e.clusterlabs
                        && w.answered[k]
                            .is_some_and(|a| t0.elapsed() > a + Duration::from_secs(30)))
            });
            let done = w.node1_end.is_some()
                && w.fenced.is_some()
                && w.answered.iter().all(Option::is_some)
                && settled;
            if done || Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        w
    }

    /// The client's load through the crash: every acknowledged journal
    /// record reads back, the stall beyond the outage, and C's loops.
    fn check_load(
        &mut self,
        kind: &str,
        load: &Load,
        moved: &[Export],
        answered: &[Option<Duration>],
        (t0_wall, offset): (SystemTime, f64),
    ) {
        let tag = kind;
        let done = self.finish_load(load);
        for (name, v) in &done {
            let Some(rest) = name.strip_prefix(&format!("journal-{tag}-")) else {
                continue;
            };
            let last = v["last_acked"].as_u64();
            let ver = &rest[rest.len() - 1..];
            let path = format!("/mnt/{rest}/journal-{tag}-v{ver}");
            let checked = last.map(|l| {
                self.client.run_for(
                    &[
                        "/handoff/bin/handoff-vmtest",
                        "--lock",
                        "check-journal",
                        &path,
                        &l.to_string(),
                    ],
                    Duration::from_secs(120),
                )
            });
            self.report.metric(
                &format!("{kind}_{rest}_journal_max_ms"),
                v["max_ms"].as_f64().unwrap_or(f64::NAN),
                "ms",
            );
            // What the client waited beyond the outage: its slowest write
            // ended this long after the export's address answered again.
            let up = moved
                .iter()
                .position(|e| rest.starts_with(e.id))
                .and_then(|k| answered[k]);
            if let Some(up) = up {
                self.report.metric(
                    &format!("{kind}_{rest}_stall_after_address_ms"),
                    crate::timeline::stall_after(v, t0_wall + up) - offset,
                    "ms",
                );
            }
            self.report.check(
                &format!("{kind}: every acknowledged record on {rest} reads back"),
                checked.as_ref().is_some_and(|d| d.code == 0),
                format!(
                    "{v}; {}",
                    checked.map(|d| d.stdout).unwrap_or_default().trim()
                ),
            );
        }
        let mut paused = false;
        for (name, v) in done.iter().filter(|(n, _)| n.starts_with("loop-")) {
            let (errors, max) = (
                v["errors"].as_u64().unwrap_or(u64::MAX),
                v["max_ms"].as_f64().unwrap_or(f64::NAN),
            );
            self.report
                .metric(&format!("{kind}_{name}_max_ms"), max, "ms");
            paused |= !self.report.check(
                &format!("{kind}: C's client ({name}) never stopped: no failure, no pause of 5 s or more"),
                errors == 0 && max < 5000.0,
                v.to_string(),
            );
        }
        if paused {
            // What the kernels waited on meanwhile, for the reader.
            for vm in [Some(&self.client), self.nodes[1].as_ref()]
                .into_iter()
                .flatten()
            {
                let samples = vm
                    .run(&["tail", "-c", "2000000", &format!("/tmp/samples-{tag}")])
                    .stdout;
                let dir = crate::util::workspace_root().join("target/vm-logs");
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(
                    dir.join(format!("crash-{tag}-{}-samples.log", vm.spec.name)),
                    samples,
                );
            }
        }
    }

    /// What says node2 fenced node1: the message in node1's sbd slot
    /// (fence_sbd writes its poison pill there; a booting node1 clears
    /// it), and node2's fencer's record of successes. Pacemaker lists only
    /// the last success without --verbose, and in runs of several crashes
    /// it kept showing the first, so the slot is the evidence that counts.
    fn fencings_of_node1(&self) -> (bool, String) {
        let Some(n2) = self.nodes[1].as_ref() else {
            return (false, String::new());
        };
        let slots = n2.run(&["sbd", "-d", SBD, "list"]).stdout;
        let pill = slots.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1) == Some(&"node1") && matches!(w.get(2), Some(&"reset") | Some(&"off"))
        });
        let history = n2
            .run(&["stonith_admin", "--history", "node1", "--output-as=xml"])
            .stdout
            .lines()
            .filter(|l| l.contains("status=\"success\""))
            .collect::<Vec<_>>()
            .join("\n");
        (pill, history)
    }

    /// Stop the moved groups, fsck their filesystems, start them again.
    fn fsck(&mut self, kind: &str, moved: &[Export]) {
        let n2 = self.node(1);
        for e in moved {
            n2.ok(&[
                "crm_resource",
                "--resource",
                &format!("export_{}", e.id),
                "--set-parameter",
                "target-role",
                "--meta",
                "--parameter-value",
                "Stopped",
            ]);
        }
        let stopped = wait(Duration::from_secs(900), || {
            let xml = self.crm_mon();
            moved
                .iter()
                .all(|e| location(&xml, &format!("{}_fs", e.id)).is_none())
        });
        let results: Vec<_> = moved
            .iter()
            .map(|e| (e, n2.run(&["e2fsck", "-fn", e.dev])))
            .collect();
        for e in moved {
            n2.ok(&[
                "crm_resource",
                "--resource",
                &format!("export_{}", e.id),
                "--delete-parameter",
                "target-role",
                "--meta",
            ]);
        }
        for (e, d) in results {
            self.report.check(
                &format!("{kind}: fsck of {} is clean", e.id.to_uppercase()),
                stopped.is_some() && d.code == 0,
                format!(
                    "{} {}",
                    d.stdout.lines().last().unwrap_or_default(),
                    d.stderr.trim()
                ),
            );
        }
        for e in moved {
            self.located(&format!("{}_vip", e.id), "node2");
        }
    }

    /// node1 boots again and rejoins without taking anything back; then,
    /// with `move_back`, its groups move back for the next crash.
    fn rejoin(&mut self, kind: &str, moved: &[Export], move_back: bool) -> bool {
        if let Some(mut vm) = self.nodes[0].take() {
            vm.power_off();
        }
        let t = Instant::now();
        self.boot_node(0, false);
        let online = wait(Duration::from_secs(900), || {
            crate::cluster::node_online(&self.crm_mon(), "node1")
        });
        self.report.metric(
            &format!("{kind}_rejoin_ms"),
            t.elapsed().as_secs_f64() * 1000.0,
            "ms",
        );
        // Give it the chance to take something back: the transition that
        // its joining computes (its probes, and any move) runs to its end.
        let _ = self.node(1).run_for(
            &["crm_resource", "--wait", "--timeout=300s"],
            Duration::from_secs(330),
        );
        let xml = self.crm_mon();
        let stayed = moved
            .iter()
            .all(|e| location(&xml, &format!("{}_vip", e.id)).as_deref() == Some("node2"));
        let mounts = self.node(0).run(&["cat", "/proc/mounts"]).stdout;
        let none_mounted = moved
            .iter()
            .all(|e| !mounts.lines().any(|l| l.split(' ').nth(1) == Some(e.dir)));
        let rejoined = self.report.check(
            &format!("rejoin after {kind}: node1 is back online, takes nothing back and mounts none of the moved disks"),
            online.is_some() && stayed && none_mounted,
            xml,
        );
        if !move_back {
            return rejoined;
        }
        for e in moved {
            let grp = format!("export_{}", e.id);
            self.node(1).ok(&[
                "crm_resource",
                "--move",
                "--resource",
                &grp,
                "--node",
                "node1",
            ]);
        }
        let back = moved
            .iter()
            .all(|e| self.located(&format!("{}_vip", e.id), "node1"));
        for e in moved {
            let _ = self.node(1).run(&[
                "crm_resource",
                "--clear",
                "--resource",
                &format!("export_{}", e.id),
            ]);
        }
        self.report.check(
            &format!("rejoin after {kind}: the groups move back to node1"),
            back,
            self.crm_mon(),
        )
    }

    /// Every machine's console and node logs into `dir`.
    pub fn save_logs(&self, dir: &Path) {
        let _ = std::fs::create_dir_all(dir);
        for vm in self.nodes.iter().flatten().chain([&self.client]) {
            let _ = std::fs::write(
                dir.join(format!("crash-{}-console.log", vm.spec.name)),
                vm.console(),
            );
            let dmesg = vm.run(&["dmesg"]);
            let _ = std::fs::write(
                dir.join(format!("crash-{}-dmesg.log", vm.spec.name)),
                dmesg.stdout,
            );
            if vm.spec.name.starts_with("node") {
                let log = vm.run(&["tail", "-n", "4000", "/var/log/pacemaker/pacemaker.log"]);
                let _ = std::fs::write(
                    dir.join(format!("crash-{}-pacemaker.log", vm.spec.name)),
                    log.stdout,
                );
            }
        }
    }

    /// The time since the topology was made.
    pub fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }
}
