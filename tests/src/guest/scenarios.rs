//! The NFS scenarios, run in order on one topology: two cluster nodes with
//! their own NFS servers, two exports A and B on shared disks, a client
//! holding locks on both.
//!
//! - `failover`: release A on node1 (vip, export, nlm-locks, fs stop) while
//!   B keeps serving on node1; take A over on node2; the client reclaims
//!   and reads back its data; B's client sees no failure or delay.
//! - `refused`: a lock that cannot be dropped, and a missing backend: stop
//!   fails and nothing is unmounted.
//! - `dropbench`: lock-drop time for 1, 100 and 10,000 locks held on A, B's
//!   locks untouched.
//! - `classic`: the classic recipe (restart the node's nfsd) and how long it
//!   blocks a new lock on B.
//! - `kmodload`, `kmod`, `kmodunload` (on the kernel ci/kernel builds): the
//!   handoff kernel module loads and registers /dev/folocks; every kind of
//!   bad request gets its errno and changes nothing; drops by devno, fd and
//!   server address take exactly A's locks and log the fsid; the agent
//!   drives it; it unloads cleanly. With `handoff.backend=kmod`, failover
//!   and dropbench run through it too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::cmdline;
use super::report::{check, metric, note};
use super::sys::{self, locks_on, rdev, wait_for, Done};
use super::topo::{self, Host};

const PATH: &str = "/handoff/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const DATA_BYTES: &str = "1048576";
/// How long a client operation may take before the harness gives up on it
/// (an NFS operation whose server is gone waits forever on a hard mount).
pub(super) const CLIENT_LIMIT: Duration = Duration::from_secs(60);

/// One export group's settings.
pub(super) struct Group {
    pub(super) id: &'static str,
    pub(super) dev: &'static str,
    pub(super) dir: &'static str,
    pub(super) vip: &'static str,
    pub(super) name: &'static str,
    pub(super) fsid: &'static str,
    pub(super) mnt: &'static str,
}

pub(super) const A: Group = Group {
    id: "a",
    dev: "/dev/vda",
    dir: "/srv/a",
    vip: "192.0.2.100",
    name: "nfs-a",
    fsid: "1",
    mnt: "/mnt/a",
};
pub(super) const B: Group = Group {
    id: "b",
    dev: "/dev/vdb",
    dir: "/srv/b",
    vip: "192.0.2.101",
    name: "nfs-b",
    fsid: "2",
    mnt: "/mnt/b",
};

/// The nlm-locks backend the scenarios use (`handoff.backend=` on the
/// kernel command line; procfs unless told otherwise).
fn backend() -> &'static str {
    static B: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    B.get_or_init(|| super::cmdline("handoff.backend").unwrap_or_else(|| "procfs".into()))
}

/// Run an agent action in a host, as Pacemaker's executor would.
pub(super) fn agent(
    h: &Host,
    name: &str,
    action: &str,
    instance: &str,
    params: &[(&str, &str)],
) -> Done {
    agent_at(h, &format!("/handoff/bin/{name}"), action, instance, params)
}

/// Run the agent at `program` (handoff's or a ClusterLabs one) as
/// Pacemaker's executor would; `params` may set CRM_meta_* too.
pub(super) fn agent_at(
    h: &Host,
    program: &str,
    action: &str,
    instance: &str,
    params: &[(&str, &str)],
) -> Done {
    let mut c = h.cmd(&[program, action]);
    c.env_clear()
        .env("PATH", PATH)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", instance)
        .env("HA_RSCTMP", "/run/resource-agents")
        .env("HA_LOGFACILITY", "none")
        .env("HA_LOGFILE", "/run/agents.log")
        .env("OCF_RESKEY_CRM_meta_timeout", "60000");
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    sys::run(&mut c)
}

/// A group's fs parameters.
pub(super) fn fs_params(g: &Group) -> Params {
    vec![
        ("device", g.dev.into()),
        ("directory", g.dir.into()),
        ("fstype", "ext4".into()),
    ]
}

/// A group's export parameters.
pub(super) fn export_params(g: &Group) -> Params {
    vec![
        ("clientspec", "192.0.2.0/24".into()),
        ("directory", g.dir.into()),
        ("fsid", g.fsid.into()),
        ("options", "rw,sync,no_root_squash,no_subtree_check".into()),
    ]
}

/// A group's vip parameters.
pub(super) fn vip_params(g: &Group) -> Params {
    vec![
        ("ip", g.vip.into()),
        ("cidr_netmask", "24".into()),
        ("nic", "eth0".into()),
        ("arp_count", "2".into()),
    ]
}

/// A node-wide group's members in start order (fs, nlm-locks, export,
/// vip), with their parameters.
pub(super) fn nodewide_members(g: &Group, grace: &str, backend: &str) -> Members {
    let locks = vec![
        ("directory", g.dir.into()),
        ("ip", g.vip.into()),
        ("notify_name", g.name.into()),
        ("grace", grace.into()),
        ("backend", backend.into()),
        ("fsid", g.fsid.into()),
    ];
    vec![
        ("fs", fs_params(g)),
        ("nlm-locks", locks),
        ("export", export_params(g)),
        ("vip", vip_params(g)),
    ]
}

pub(super) fn run_member(
    h: &Host,
    g: &Group,
    agent_name: &str,
    action: &str,
    params: &[(&'static str, String)],
) -> Done {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    agent(
        h,
        agent_name,
        action,
        &format!("{}_{}", g.id, agent_name.replace('-', "_")),
        &p,
    )
}

/// One agent's parameters.
pub(super) type Params = Vec<(&'static str, String)>;
/// A group's members with their parameters, in start order.
pub(super) type Members = Vec<(&'static str, Params)>;

/// Start a group in order; stops at the first failure, as Pacemaker does.
fn start_group(h: &Host, g: &Group, grace: &str) -> Vec<(&'static str, Done)> {
    start_members(h, g, nodewide_members(g, grace, backend()))
}

/// Stop a group in reverse order; stops at the first failure.
fn stop_group(h: &Host, g: &Group, backend: &str) -> Vec<(&'static str, Done)> {
    stop_members(h, g, nodewide_members(g, "existing", backend))
}

/// Start `list` in order; stops at the first failure, as Pacemaker does.
pub(super) fn start_members(h: &Host, g: &Group, list: Members) -> Vec<(&'static str, Done)> {
    start_members_paused(h, g, list, None)
}

/// As [`start_members`], waiting `pause` after the member `after` started
/// (a group whose later members start slowly: a slow fsck, Pacemaker busy
/// with other groups).
pub(super) fn start_members_paused(
    h: &Host,
    g: &Group,
    list: Members,
    pause: Option<(&str, Duration)>,
) -> Vec<(&'static str, Done)> {
    let mut done = Vec::new();
    for (a, params) in list {
        let d = run_member(h, g, a, "start", &params);
        let failed = d.code != 0;
        done.push((a, d));
        if failed {
            break;
        }
        if let Some((_, p)) = pause.filter(|(after, _)| *after == a) {
            note(format!(
                "pausing {} s after {a} of {} started",
                p.as_secs(),
                g.id
            ));
            std::thread::sleep(p);
        }
    }
    done
}

/// Stop `list` in reverse order; stops at the first failure.
pub(super) fn stop_members(h: &Host, g: &Group, list: Members) -> Vec<(&'static str, Done)> {
    let mut done = Vec::new();
    for (a, params) in list.into_iter().rev() {
        let d = run_member(h, g, a, "stop", &params);
        let failed = d.code != 0;
        done.push((a, d));
        if failed {
            break;
        }
    }
    done
}

pub(super) fn all_ok(steps: &[(&str, Done)]) -> (bool, String) {
    all_of_ok(steps, 4)
}

/// As [`all_ok`], for `n` members (part of a group).
pub(super) fn all_of_ok(steps: &[(&str, Done)], n: usize) -> (bool, String) {
    let ok = steps.len() == n && steps.iter().all(|(_, d)| d.code == 0);
    let detail = steps
        .iter()
        .map(|(a, d)| format!("{a}={} {:.1}ms {}", d.code, d.ms(), d.reason()))
        .collect::<Vec<_>>()
        .join("; ");
    (ok, detail)
}

pub(super) fn total_ms(steps: &[(&str, Done)]) -> f64 {
    steps.iter().map(|(_, d)| d.ms()).sum()
}

/// Spawn a program whose first output line says it is ready.
pub(super) fn spawn_ready(mut cmd: std::process::Command, timeout: Duration) -> (Child, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).unwrap_or_default();
    (child, line.trim().to_owned())
}

pub(super) fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

pub(super) fn lock_cmd(h: &Host, args: &[&str]) -> std::process::Command {
    let mut all = vec!["/handoff/bin/handoff-vmtest", "--lock"];
    all.extend_from_slice(args);
    h.cmd(&all)
}

/// Write (`write`) or check (`verify`) 1 MiB of content made from `seed`
/// at `path`, from `client`.
pub(super) fn data_on(client: &Host, verb: &str, path: &str, seed: &str) -> Done {
    client.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            verb,
            path,
            DATA_BYTES,
            seed,
        ],
        CLIENT_LIMIT,
    )
}

/// A lock/unlock loop from the client, until stopped.
pub(super) struct Loop {
    child: Child,
    stop: String,
}

impl Loop {
    /// On B.
    fn start(client: &Host, tag: &str) -> Loop {
        Loop::on(client, B.mnt, tag)
    }

    /// On the export mounted at `mnt`.
    pub(super) fn on(client: &Host, mnt: &str, tag: &str) -> Loop {
        Loop::verb(client, "loop", mnt, tag)
    }

    /// Records appended with fsync, each timed, on the export mounted at
    /// `mnt`: the stall its client sees.
    pub(super) fn journal(client: &Host, mnt: &str, tag: &str) -> Loop {
        Loop::verb(client, "journal", mnt, tag)
    }

    fn verb(client: &Host, verb: &str, mnt: &str, tag: &str) -> Loop {
        let stop = format!("/tmp/stop-{tag}");
        let _ = std::fs::remove_file(&stop);
        let child = lock_cmd(client, &[verb, &format!("{mnt}/{verb}-{tag}"), &stop])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("loop");
        Loop { child, stop }
    }

    pub(super) fn finish(mut self) -> serde_json::Value {
        let _ = std::fs::write(&self.stop, "");
        // A loop stuck on a server that is gone would wait forever.
        if wait_for(CLIENT_LIMIT, || {
            self.child.try_wait().ok().flatten().is_some()
        })
        .is_none()
        {
            let _ = self.child.kill();
        }
        let out = self.child.wait_with_output().expect("loop output");
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }
}

/// The topology, shared by the scenarios.
pub struct World {
    pub(super) node1: Host,
    pub(super) node2: Host,
    /// A node without an NFS server of its own (virtual servers only).
    pub(super) node3: Host,
    pub(super) client: Host,
    pub(super) holders: Vec<Child>,
}

impl World {
    fn new() -> World {
        topo::bridge();
        for (dev, label) in [(A.dev, "export_a"), (B.dev, "export_b")] {
            sys::ok(&["mkfs.ext4", "-q", "-F", "-L", label, dev]);
        }
        for d in [A.dir, B.dir, A.mnt, B.mnt] {
            let _ = std::fs::create_dir_all(d);
        }
        let node1 = Host::new("node1", "192.0.2.11");
        let node2 = Host::new("node2", "192.0.2.12");
        let node3 = Host::new("node3", "192.0.2.13");
        let client = Host::new("client", "192.0.2.50");
        node1.start_nfs_server(10);
        node2.start_nfs_server(10);
        client.start_nfs_client();
        // The first start of an NFS server is a grace period too.
        let settled = wait_for(Duration::from_secs(30), || {
            !node1.in_grace() && !node2.in_grace()
        });
        check("setup: initial grace periods ended", settled.is_some(), "");
        World {
            node1,
            node2,
            node3,
            client,
            holders: Vec::new(),
        }
    }

    /// Mount the group's export on the client, over NFSv3 through its VIP.
    pub(super) fn mount(&self, g: &Group) {
        self.client.ok(&[
            "mount.nfs",
            &format!("{}:{}", g.vip, g.dir),
            g.mnt,
            "-o",
            "vers=3,proto=tcp",
        ]);
    }

    /// Mount the group's export on `client` over NFSv4.2 through its VIP,
    /// at its mount point with a 4 appended; returns that mount point.
    pub(super) fn mount_v4(client: &Host, g: &Group) -> String {
        let at = format!("{}4", g.mnt);
        let _ = std::fs::create_dir_all(format!("/proc/{}/root{at}", client.pid));
        client.ok(&[
            "mount.nfs",
            &format!("{}:{}", g.vip, g.dir),
            &at,
            "-o",
            "vers=4.2,proto=tcp",
        ]);
        at
    }

    /// Write (`write`) or check (`verify`) 1 MiB of content made from
    /// `seed` in the group's `data` file, from the client.
    pub(super) fn data(&self, verb: &str, g: &Group, seed: &str) -> Done {
        self.data_at(verb, &format!("{}/data", g.mnt), seed)
    }

    /// As [`World::data`], at `path`.
    pub(super) fn data_at(&self, verb: &str, path: &str, seed: &str) -> Done {
        data_on(&self.client, verb, path, seed)
    }

    /// After `g` moved: report the reclaim time and the failover's whole
    /// time (first stop to locks reclaimed; `times` is the first stop, the
    /// end of the takeover and the reclaim after it), and check that the
    /// client reads back its data (written with `seed`) and that its lock
    /// holders never saw an error.
    pub(super) fn after_takeover(
        &mut self,
        scenario: &str,
        prefix: &str,
        g: &Group,
        seed: &str,
        times: (Instant, Instant, Option<Duration>),
    ) {
        let (t0, taken, reclaimed) = times;
        if let Some(r) = reclaimed {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            metric(&format!("{prefix}reclaim_after_takeover_ms"), ms(r), "ms");
            let total = t0.elapsed() - (taken.elapsed() - r);
            metric(&format!("{prefix}failover_total_ms"), ms(total), "ms");
        }
        let back = self.data("verify", g, seed);
        check(
            &format!(
                "{scenario}: the client reads back every byte it wrote to {}",
                g.id.to_uppercase()
            ),
            back.code == 0,
            back.stdout.trim(),
        );
        let alive = self
            .holders
            .iter_mut()
            .all(|c| c.try_wait().ok().flatten().is_none());
        check(
            &format!("{scenario}: the client's lock holders never saw an error"),
            alive,
            "",
        );
    }

    pub(super) fn hold(&mut self, path: &str) -> bool {
        let (child, line) = spawn_ready(
            lock_cmd(&self.client, &["hold", path]),
            Duration::from_secs(60),
        );
        self.holders.push(child);
        line == "HELD"
    }

    /// Keep `path` open for reading from the client (an NFSv4 server may
    /// delegate it).
    pub(super) fn keep_open(&mut self, path: &str) -> bool {
        let (child, line) = spawn_ready(
            lock_cmd(&self.client, &["open", path]),
            Duration::from_secs(60),
        );
        self.holders.push(child);
        line == "OPEN"
    }
}

fn failover(w: &mut World) {
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    for g in [&A, &B] {
        let (ok, detail) = all_ok(&start_group(&w.node1, g, "existing"));
        assert!(
            check(
                &format!("failover: group {} starts on node1", g.id),
                ok,
                &detail
            ),
            "group {} did not start",
            g.id
        );
    }
    for g in [&A, &B] {
        w.mount(g);
    }
    let wrote = w.data("write", &A, "42");
    check(
        "failover: client wrote 1 MiB to A",
        wrote.code == 0,
        wrote.stdout.trim(),
    );
    let held = [
        format!("{}/f1", A.mnt),
        format!("{}/f2", A.mnt),
        format!("{}/f1", B.mnt),
    ]
    .iter()
    .all(|p| w.hold(p));
    check("failover: client holds 2 locks on A and 1 on B", held, "");
    let seen = wait_for(Duration::from_secs(10), || {
        locks_on(a_dev) == 2 && locks_on(b_dev) == 1
    });
    check(
        "failover: node1 holds them for the client",
        seen.is_some(),
        format!("A {} B {}", locks_on(a_dev), locks_on(b_dev)),
    );

    let baseline = Loop::start(&w.client, "baseline");
    std::thread::sleep(Duration::from_secs(2));
    let base = baseline.finish();
    note(format!("B lock/unlock baseline: {base}"));
    metric(
        "b_baseline_median_ms",
        base["median_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );
    metric(
        "b_baseline_max_ms",
        base["max_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );

    // Release A on node1 while the client keeps locking on B.
    let during = Loop::start(&w.client, "during");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let release = stop_group(&w.node1, &A, backend());
    let (ok, detail) = all_ok(&release);
    let released = check(
        "failover: A stops on node1 (vip, export, nlm-locks, fs)",
        ok,
        &detail,
    );
    metric("release_ms", total_ms(&release), "ms");
    for (a, d) in &release {
        metric(&format!("release_{}_ms", a.replace('-', "_")), d.ms(), "ms");
    }
    check(
        "failover: A's locks are gone from the server",
        locks_on(a_dev) == 0,
        format!("{} left", locks_on(a_dev)),
    );
    check(
        "failover: B's lock is still held",
        locks_on(b_dev) >= 1,
        format!("{} on B", locks_on(b_dev)),
    );
    check(
        "failover: A is unmounted on node1",
        !w.node1.is_mounted(A.dir),
        "",
    );
    if !released || locks_on(a_dev) != 0 {
        // Nothing after this would mean anything.
        let _ = during.finish();
        panic!("A was not released on node1");
    }

    // Take A over on node2 (idle until now: a restart gives it a fresh
    // grace), its export and vip starting longer after nlm-locks than the
    // node's own grace period (10 s, see World::new) lasts.
    let pause = Duration::from_secs(15);
    let takeover = start_members_paused(
        &w.node2,
        &A,
        nodewide_members(&A, "restart", backend()),
        Some(("nlm-locks", pause)),
    );
    let taken = Instant::now();
    let (ok, detail) = all_ok(&takeover);
    if !check(
        "failover: A starts on node2 (fs, nlm-locks, export, vip)",
        ok,
        &detail,
    ) {
        let _ = during.finish();
        panic!("A did not start on node2");
    }
    metric("takeover_ms", total_ms(&takeover), "ms");
    let reclaimed = wait_for(Duration::from_secs(90), || locks_on(a_dev) == 2);
    check(
        "failover: the client reclaims its 2 locks on A at node2, though A's vip started after the node's grace would have ended",
        reclaimed.is_some(),
        format!(
            "{} locks on A; node2 log: {}",
            locks_on(a_dev),
            w.node2
                .read("/run/agents.log")
                .lines()
                .filter(|l| l.contains("nlm-locks"))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );
    w.after_takeover("failover", "", &A, "42", (t0, taken, reclaimed));
    let ended = wait_for(Duration::from_secs(60), || !w.node2.in_grace());
    let log = w.node2.read("/run/agents.log");
    check(
        "failover: node2's restarted grace ends once A's locks are back",
        ended.is_some()
            && log
                .lines()
                .any(|l| l.contains("(a_nlm_locks)") && l.contains("every lock reclaimed")),
        log.lines()
            .filter(|l| l.contains("(a_nlm_locks)"))
            .collect::<Vec<_>>()
            .join(" | "),
    );

    let d = during.finish();
    note(format!("B lock/unlock during A's failover: {d}"));
    let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
    let max = d["max_ms"].as_f64().unwrap_or(f64::NAN);
    metric(
        "b_during_count",
        d["count"].as_f64().unwrap_or(f64::NAN),
        "ops",
    );
    metric("b_during_errors", errors as f64, "ops");
    metric("b_during_max_ms", max, "ms");
    metric(
        "b_during_median_ms",
        d["median_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );
    check(
        "failover: B's client saw no failed lock operation",
        errors == 0,
        d.to_string(),
    );
    // A grace period would block for seconds; a slow TCG tick is far less.
    check(
        "failover: B's client saw no delay beyond normal (< 1 s)",
        max < 1000.0,
        d.to_string(),
    );
    for (name, params) in nodewide_members(&A, "existing", backend()) {
        let m = run_member(&w.node2, &A, name, "monitor", &params);
        check(
            &format!("failover: {name} of A monitors 0 on node2"),
            m.code == 0,
            m.reason(),
        );
    }
}

fn refused(w: &mut World) {
    let (local, line) = spawn_ready(
        lock_cmd(&w.node2, &["hold", &format!("{}/local", A.dir)]),
        Duration::from_secs(10),
    );
    check(
        "refused: a local process on node2 holds a lock on A",
        line == "HELD",
        &line,
    );
    let steps = stop_group(&w.node2, &A, "procfs");
    let nlm = steps
        .iter()
        .find(|(a, _)| *a == "nlm-locks")
        .map(|(_, d)| d.clone());
    let refused = nlm
        .as_ref()
        .is_some_and(|d| d.code == 1 && d.reason().contains("remain"));
    check(
        "refused: nlm-locks stop fails and says the locks remain",
        refused,
        nlm.map(|d| d.reason()).unwrap_or_default(),
    );
    check(
        "refused: fs is not stopped after it, A stays mounted",
        w.node2.is_mounted(A.dir) && steps.len() == 3,
        "",
    );
    kill(local);
    let (_, params) = &nodewide_members(&A, "existing", "kmod")[1];
    let d = run_member(&w.node2, &A, "nlm-locks", "stop", params);
    check(
        "refused: backend=kmod without the module fails (5)",
        d.code == 5 && d.reason().contains("/dev/folocks"),
        d.reason(),
    );
    check("refused: A is still mounted", w.node2.is_mounted(A.dir), "");
    // Serve A again (the instance is still recorded; the client's locks are
    // held again by nobody, so node2 is told nothing new).
    let (ok, detail) = all_ok(&start_group(&w.node2, &A, "existing"));
    check("refused: A serves again on node2", ok, detail);
}

/// Lock-drop times through `backend`; checks and metrics carry its name.
fn dropbench(w: &mut World, backend: &str) {
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    for n in [1usize, 100, 10000] {
        let path = format!("{}/many-{n}", A.mnt);
        let (holder, line) = spawn_ready(
            lock_cmd(&w.client, &["many", &path, &n.to_string()]),
            Duration::from_secs(600),
        );
        let before_a = locks_on(a_dev);
        let before_b = locks_on(b_dev);
        check(
            &format!("dropbench {backend}: client holds {n} locks on A"),
            line == format!("HELD {n}") && before_a >= n,
            format!("{line}; {before_a} on A"),
        );
        let (_, mut params) = nodewide_members(&A, "existing", backend).swap_remove(1);
        // One round also drops by server address, to see it work on this kernel.
        if n == 100 {
            params.push(("unlock_ip", "true".into()));
        }
        let d = run_member(&w.node2, &A, "nlm-locks", "stop", &params);
        if n == 100 {
            check(
                &format!("dropbench {backend}: unlock_ip drops locks on this kernel"),
                d.code == 0 && !d.stderr.contains("dropped none"),
                d.stderr
                    .lines()
                    .filter(|l| l.contains("unlock_ip"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let dropped_ms = d
            .stderr
            .lines()
            .find_map(|l| {
                l.split_once(&format!("through {backend} in "))
                    .and_then(|(_, r)| r.trim_end_matches(" ms").parse::<f64>().ok())
            })
            .unwrap_or(f64::NAN);
        check(
            &format!("dropbench {backend}: {n} locks dropped"),
            d.code == 0 && locks_on(a_dev) == 0,
            format!("{} left; {}", locks_on(a_dev), d.reason()),
        );
        check(
            &format!("dropbench {backend}: B's locks untouched while dropping {n}"),
            locks_on(b_dev) == before_b,
            format!("{} on B", locks_on(b_dev)),
        );
        metric(&format!("drop_{backend}_{n}_locks_ms"), dropped_ms, "ms");
        metric(
            &format!("nlm_locks_stop_{backend}_{n}_locks_ms"),
            d.ms(),
            "ms",
        );
        kill(holder);
        let s = run_member(&w.node2, &A, "nlm-locks", "start", &params);
        check(
            &format!("dropbench {backend}: nlm-locks starts again after {n}"),
            s.code == 0,
            s.reason(),
        );
    }
}

fn classic(w: &mut World) {
    let b_dev = rdev(B.dev);
    let before = locks_on(b_dev);
    // The classic recipe: restart the node's NFS server, default grace
    // (settable only while nfsd is stopped).
    let t = Instant::now();
    w.node1.ok(&["rpc.nfsd", "0"]);
    w.node1.set_grace(0);
    w.node1.ok(&["rpc.nfsd", "8"]);
    metric(
        "classic_restart_ms",
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    let after = locks_on(b_dev);
    if cmdline("handoff.kernel").as_deref() == Some("6.1") {
        // Both nodes are namespaces of one kernel here, and node2's nfsd
        // keeps lockd's thread up: 6.1 then frees no lock of a namespace
        // whose nfsd stopped (6.12 does). A node of its own would lose
        // them with lockd's thread; B's clients wait out the grace either
        // way, which the probe below measures.
        note(format!(
            "classic: on 6.1 in one kernel the restart kept B's locks: {before} -> {after}"
        ));
    } else {
        check(
            "classic: the restart dropped B's lock too",
            after < before,
            format!("{before} -> {after}"),
        );
    }
    let probe = w.client.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            "try",
            &format!("{}/classic-probe", B.mnt),
        ],
        Duration::from_secs(300),
    );
    let blocked = probe.ms();
    metric("classic_new_lock_on_b_blocked_ms", blocked, "ms");
    check(
        "classic: a new lock on B waits for the grace period",
        probe.code == 0 && blocked > 30_000.0,
        format!("{} after {blocked:.0} ms", probe.stdout.trim()),
    );
}

/// Where the test puts the module in the guest.
const KO: &str = "/handoff/handoff_folocks.ko";

/// New kernel log lines since the last call (from /dev/kmsg).
pub(super) fn kmsg() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    static SEEN: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
    let mut lines = Vec::new();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    {
        // One record per read; EAGAIN at the end.
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some((_, msg)) = rec.split_once(';') {
                lines.push(msg.trim_end().to_owned());
            }
        }
    }
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let new = lines.get(*seen..).unwrap_or_default().join("\n");
    *seen = lines.len();
    new
}

fn kmod_load() {
    let _ = kmsg();
    let f = std::fs::File::open(KO).expect("the module is in the guest");
    let loaded = nix::kmod::finit_module(
        &f,
        &std::ffi::CString::default(),
        nix::kmod::ModuleInitFlags::empty(),
    );
    check(
        "kmodload: handoff_folocks loads",
        loaded.is_ok(),
        format!("{loaded:?}"),
    );
    let dev = wait_for(Duration::from_secs(5), || {
        std::path::Path::new("/dev/folocks").exists()
    });
    let mode = nix::sys::stat::stat("/dev/folocks").map(|s| s.st_mode & 0o777);
    check(
        "kmodload: /dev/folocks appears, root only (0600)",
        dev.is_some() && mode == Ok(0o600),
        format!("{mode:?}"),
    );
    let log = kmsg();
    check(
        "kmodload: the module says it is ready, with its request version",
        log.contains("handoff_folocks: ready: /dev/folocks, request layout v1"),
        log,
    );
    let v = sys::run(&mut sys::cmd(&[
        "/handoff/bin/handoff-vmtest",
        "--folocks",
        "version",
    ]));
    check(
        "kmodload: it speaks request version 1",
        v.stdout.trim() == "ok 1:0",
        v.stdout,
    );
}

fn folocks(h: &Host, args: &[&str]) -> String {
    let mut all = vec!["/handoff/bin/handoff-vmtest", "--folocks"];
    all.extend_from_slice(args);
    h.run(&all).stdout.trim().to_owned()
}

fn kmod_requests(w: &mut World) {
    // Only what this scenario makes the kernel say counts below.
    let _ = kmsg();
    // A is served by node2, B by node1 (after failover).
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    let (a, b) = (
        format!("{}:{}", a_dev.0, a_dev.1),
        format!("{}:{}", b_dev.0, b_dev.1),
    );
    let held = |w: &mut World, tag: &str| {
        let ok =
            w.hold(&format!("{}/kmod-{tag}", A.mnt)) && w.hold(&format!("{}/kmod-{tag}", B.mnt));
        (ok, locks_on(a_dev), locks_on(b_dev))
    };
    let (ok, on_a, on_b) = held(w, "refused");
    check(
        "kmod: the client holds locks on A and B",
        ok && on_a > 0 && on_b > 0,
        format!("{on_a} on A, {on_b} on B"),
    );
    let sub = format!("{}/kmod-subdir", A.dir);
    // /srv/a is mounted in node2's mount namespace only.
    std::fs::create_dir_all(format!("/proc/{}/root{sub}", w.node2.pid)).expect("subdir on A");
    let bad: &[(&str, &[&str], &str)] = &[
        (
            "a device with another filesystem type",
            &["devno", &a, "tmpfs"],
            "ENOENT",
        ),
        (
            "a filesystem type the kernel lacks",
            &["devno", &a, "nosuchfs"],
            "ENODEV",
        ),
        (
            "a device nothing is mounted from",
            &["devno", "7:250", "ext4"],
            "ENOENT",
        ),
        (
            "a directory that is not a mount root",
            &["fd", &sub],
            "ENOTDIR",
        ),
        (
            "a mount root on another device than named",
            &["fd", A.dir, &b],
            "EXDEV",
        ),
        ("a descriptor that is not open", &["badfd"], "EBADF"),
        (
            "another request version",
            &["version2", &a, "ext4"],
            "EPROTO",
        ),
        ("reserved bytes set", &["reserved", &a, "ext4"], "EINVAL"),
        (
            "an address family other than IPv4/IPv6",
            &["family"],
            "EAFNOSUPPORT",
        ),
        (
            "the unspecified address",
            &["ip", "0.0.0.0"],
            "EADDRNOTAVAIL",
        ),
        ("a multicast address", &["ip", "ff02::1"], "EADDRNOTAVAIL"),
        (
            "a request running off readable memory",
            &["short", &a, "ext4"],
            "EFAULT",
        ),
        ("an unknown ioctl", &["unknown", &a, "ext4"], "ENOTTY"),
        (
            "a caller without CAP_SYS_ADMIN",
            &["noadmin", &a, "ext4"],
            "EPERM",
        ),
    ];
    for (what, args, errno) in bad {
        let out = folocks(&w.node2, args);
        check(
            &format!("kmod: refuses {what} with {errno}, nothing dropped"),
            out == format!("err {errno}") && locks_on(a_dev) == on_a && locks_on(b_dev) == on_b,
            format!("{out}; {} on A, {} on B", locks_on(a_dev), locks_on(b_dev)),
        );
    }
    let log = kmsg();
    check(
        "kmod: refused requests leave no trace in the kernel log",
        !log.contains("released"),
        log,
    );

    // Each drop form takes exactly A's locks.
    let forms: [(&str, Vec<&str>, String); 3] = [
        (
            "devno",
            vec!["devno", &a, "ext4", A.fsid],
            format!("fsid {}: released the NLM locks on vda ({a})", A.fsid),
        ),
        (
            "fd",
            vec!["fd", A.dir, &a, A.fsid],
            format!("fsid {}: released the NLM locks on vda ({a})", A.fsid),
        ),
        (
            "ip",
            vec!["ip", A.vip, "-", A.fsid],
            format!(
                "fsid {}: released the NLM locks taken through {}",
                A.fsid, A.vip
            ),
        ),
    ];
    for (form, args, logged) in forms {
        let (ok, on_a, on_b) = held(w, form);
        let out = folocks(&w.node2, &args);
        let want = if form == "ip" {
            "ok 0:0".to_owned()
        } else {
            format!("ok {a}")
        };
        check(
            &format!("kmod: drop by {form} takes A's {on_a} lock(s) and none of B's {on_b}"),
            ok && out == want && locks_on(a_dev) == 0 && locks_on(b_dev) == on_b,
            format!("{out}; {} on A, {} on B", locks_on(a_dev), locks_on(b_dev)),
        );
        let log = kmsg();
        check(
            &format!("kmod: drop by {form} is logged with the fsid"),
            log.contains(&logged),
            log,
        );
    }

    // The agent, in the devno form the original proposal asked for.
    let (_, mut params) = nodewide_members(&A, "existing", "kmod").swap_remove(1);
    params.push(("kmod_request", "devno".into()));
    let (ok, on_a, on_b) = held(w, "agent");
    let d = run_member(&w.node2, &A, "nlm-locks", "stop", &params);
    check(
        "kmod: nlm-locks backend=kmod kmod_request=devno drops A's locks, not B's, and says kmod acted",
        ok && on_a > 0 && d.code == 0 && d.stderr.contains("through kmod") && locks_on(a_dev) == 0 && locks_on(b_dev) == on_b,
        format!("{}; {}", d.reason(), d.stderr.lines().filter(|l| l.contains("kmod")).collect::<Vec<_>>().join(" ")),
    );
    let log = kmsg();
    check(
        "kmod: the agent's request carries the fsid",
        log.contains(&format!("fsid {}: released", A.fsid)),
        log,
    );
    let s = run_member(&w.node2, &A, "nlm-locks", "start", &params);
    check(
        "kmod: nlm-locks starts again with backend=kmod",
        s.code == 0,
        s.reason(),
    );
}

fn kmod_unload() {
    let _ = kmsg();
    let r = nix::kmod::delete_module(c"handoff_folocks", nix::kmod::DeleteModuleFlags::O_NONBLOCK);
    check(
        "kmodunload: handoff_folocks unloads",
        r.is_ok(),
        format!("{r:?}"),
    );
    let gone = wait_for(Duration::from_secs(5), || {
        !std::path::Path::new("/dev/folocks").exists()
    });
    check("kmodunload: /dev/folocks is gone", gone.is_some(), "");
    let log = kmsg();
    check(
        "kmodunload: it reports its requests, none incomplete",
        log.contains("handoff_folocks: unloading after") && log.contains(" 0 incomplete"),
        &log,
    );
    check(
        "kmodunload: no warning, oops or BUG in the kernel log",
        !["WARNING", "BUG", "Oops", "refcount"]
            .iter()
            .any(|w| log.contains(w)),
        log,
    );
}

/// Run the named scenarios (comma-separated) in order.
pub fn run_all(list: &str) {
    std::env::set_var("PATH", PATH);
    // The Pacemaker scenarios build their own topology (a cluster).
    if list == "cluster" {
        if let Err(p) = std::panic::catch_unwind(super::cluster::run) {
            check("cluster: ran to the end", false, panic_text(&p));
        }
        return;
    }
    let mut world = match std::panic::catch_unwind(World::new) {
        Ok(w) => w,
        Err(p) => {
            check("setup", false, panic_text(&p));
            return;
        }
    };
    for name in list.split(',').filter(|s| !s.is_empty()) {
        note(format!("scenario {name}"));
        let w = &mut world;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match name {
            "failover" => failover(w),
            "refused" => refused(w),
            "dropbench" => dropbench(w, backend()),
            "dropbench-procfs" => dropbench(w, "procfs"),
            "dropbench-kmod" => dropbench(w, "kmod"),
            "classic" => classic(w),
            "kmodload" => kmod_load(),
            "kmod" => kmod_requests(w),
            "kmodunload" => kmod_unload(),
            "vservers" => super::vservers::run(w),
            "dropin" => super::dropin::export(w),
            "nodewide" => super::vservers::nodewide(w),
            other => {
                check(
                    &format!("{other}: known scenario"),
                    false,
                    "no such scenario",
                );
            }
        }));
        if let Err(p) = r {
            check(&format!("{name}: ran to the end"), false, panic_text(&p));
        }
    }
    for c in world.holders.drain(..) {
        kill(c);
    }
    for h in [&world.node1, &world.node2, &world.node3] {
        note(format!(
            "{} agent log:\n{}",
            h.name,
            h.read("/run/agents.log")
        ));
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}
