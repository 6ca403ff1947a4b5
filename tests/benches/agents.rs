//! Side-by-side timings of handoff's agents and the ClusterLabs agents that
//! do the same job (Debian's resource-agents), in one run on the same
//! devices. Run with `ci/bench` (release binaries), or:
//!
//!     HANDOFF_BIN_DIR=target/release cargo bench -p handoff-tests --bench agents -- fs
//!
//! Each action is timed from spawn to exit, the two agents interleaved run
//! by run; the table gives medians, minimums and the ratio of medians.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use handoff_tests::util::{agent_bin, run_ok};
use handoff_tests::{LoopDev, Scratch};

const HEARTBEAT: &str = "/usr/lib/ocf/resource.d/heartbeat";

/// One agent configured for one resource.
struct Agent {
    label: &'static str,
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Agent {
    fn run(&self, action: &str, extra: &[(&str, &str)]) -> (Duration, i32) {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(action)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t = Instant::now();
        let status = cmd.status().expect("run agent");
        (t.elapsed(), status.code().unwrap_or(-1))
    }
}

fn base_env(instance: &str) -> Vec<(String, String)> {
    [
        ("OCF_ROOT", "/usr/lib/ocf"),
        ("OCF_RESOURCE_INSTANCE", instance),
        ("OCF_RESKEY_CRM_meta_timeout", "20000"),
        ("HA_LOGFACILITY", "none"),
        ("HA_RSCTMP", "/run/resource-agents"),
        ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

struct Stats {
    median: f64,
    min: f64,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Stats {
        median: ms(v[v.len() / 2]),
        min: ms(v[0]),
    }
}

struct Row {
    action: String,
    ours: Stats,
    theirs: Stats,
}

/// Time `f` on both agents, interleaved, after warm-up runs.
fn compare(
    action: &str,
    runs: usize,
    ours: &Agent,
    theirs: &Agent,
    mut f: impl FnMut(&Agent) -> Duration,
) -> Row {
    for _ in 0..3 {
        f(ours);
        f(theirs);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(f(ours));
        b.push(f(theirs));
    }
    Row {
        action: action.to_owned(),
        ours: stats(a),
        theirs: stats(b),
    }
}

fn expect(label: &str, action: &str, (d, code): (Duration, i32), want: i32) -> Duration {
    assert_eq!(
        code, want,
        "{label} {action} exited {code}, expected {want}"
    );
    d
}

fn print(title: &str, ours: &str, theirs: &str, rows: &[Row]) {
    println!("\n## {title}\n");
    println!("| action | {ours} median (min) ms | {theirs} median (min) ms | ratio |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} ({:.2}) | {:.2} ({:.2}) | {:.1}x |",
            r.action,
            r.ours.median,
            r.ours.min,
            r.theirs.median,
            r.theirs.min,
            r.theirs.median / r.ours.median
        );
    }
}

fn bench_fs(runs: usize) {
    let scratch = Scratch::new("bench-fs");
    let dev = LoopDev::ext4(scratch.path(), "disk");
    let dir = scratch.join("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let params = |env: &mut Vec<(String, String)>| {
        env.push(("OCF_RESKEY_device".into(), dev.dev()));
        env.push(("OCF_RESKEY_directory".into(), dir.display().to_string()));
        env.push(("OCF_RESKEY_fstype".into(), "ext4".into()));
    };
    let mut env = base_env("bench_fs");
    params(&mut env);
    let ours = Agent {
        label: "ocf:handoff:fs",
        bin: agent_bin("fs"),
        env: env.clone(),
    };
    let theirs = Agent {
        label: "ocf:heartbeat:Filesystem",
        bin: Path::new(HEARTBEAT).join("Filesystem"),
        env,
    };
    let interval = [("OCF_RESKEY_CRM_meta_interval", "20000")];

    let mut rows = Vec::new();
    rows.push(compare("meta-data", runs, &ours, &theirs, |a| {
        expect(a.label, "meta-data", a.run("meta-data", &[]), 0)
    }));
    rows.push(compare("validate-all", runs, &ours, &theirs, |a| {
        expect(a.label, "validate-all", a.run("validate-all", &[]), 0)
    }));
    rows.push(compare("probe (stopped)", runs, &ours, &theirs, |a| {
        expect(a.label, "probe", a.run("monitor", &[]), 7)
    }));
    // Both monitor the same mounted filesystem.
    expect(ours.label, "start", ours.run("start", &[]), 0);
    rows.push(compare("monitor depth 0", runs, &ours, &theirs, |a| {
        expect(a.label, "monitor", a.run("monitor", &interval), 0)
    }));
    let depth10 = [interval[0], ("OCF_CHECK_LEVEL", "10")];
    rows.push(compare("monitor depth 10", runs, &ours, &theirs, |a| {
        expect(a.label, "monitor 10", a.run("monitor", &depth10), 0)
    }));
    let depth20 = [interval[0], ("OCF_CHECK_LEVEL", "20")];
    rows.push(compare("monitor depth 20", runs, &ours, &theirs, |a| {
        expect(a.label, "monitor 20", a.run("monitor", &depth20), 0)
    }));
    expect(ours.label, "stop", ours.run("stop", &[]), 0);
    rows.push(compare("start+stop", runs, &ours, &theirs, |a| {
        expect(a.label, "start", a.run("start", &[]), 0)
            + expect(a.label, "stop", a.run("stop", &[]), 0)
    }));
    // The kernel's own share of start+stop: mount(8) and umount(8).
    let mut kernel = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        run_ok(Command::new("mount").arg(&dev.path).arg(&dir));
        run_ok(Command::new("umount").arg(&dir));
        kernel.push(t.elapsed());
    }
    print(
        "ocf:handoff:fs vs ocf:heartbeat:Filesystem (ext4 on a loop device)",
        "handoff",
        "Filesystem",
        &rows,
    );
    let k = stats(kernel);
    println!(
        "\nmount(8)+umount(8) alone, for scale: median {:.2} ms (min {:.2})",
        k.median, k.min
    );
}

/// Move this (single-threaded) process into a network namespace; agents
/// spawned afterwards start there without an extra exec.
fn enter_netns(netns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{netns}")).expect("netns");
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// The MAC the peer's ARP table has for `ip`, read through a process
/// that lives in the peer's namespace (cheap enough to poll).
fn peer_mac(sleeper: u32, ip: &str) -> Option<String> {
    let table = std::fs::read_to_string(format!("/proc/{sleeper}/net/arp")).ok()?;
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ip))
        .and_then(|l| l.split_whitespace().nth(3))
        .filter(|m| *m != "00:00:00:00:00:00")
        .map(str::to_owned)
}

fn bench_vip(runs: usize) {
    let lan = handoff_tests::Lan::new(&["s1", "s2", "peer"]);
    let (s1, s2, peer) = (lan.host("s1"), lan.host("s2"), lan.host("peer"));
    std::fs::create_dir_all("/run/resource-agents").expect("HA_RSCTMP");
    let ip = "192.0.2.100";
    let mut env = base_env("bench_vip");
    env.push(("OCF_RESKEY_ip".into(), ip.into()));
    env.push(("OCF_RESKEY_cidr_netmask".into(), "24".into()));
    env.push(("OCF_RESKEY_nic".into(), "eth0".into()));
    let ours = Agent {
        label: "ocf:handoff:vip",
        bin: agent_bin("vip"),
        env: env.clone(),
    };
    let mut unguarded_env = env.clone();
    unguarded_env.push(("OCF_RESKEY_duplicate_check".into(), "false".into()));
    let unguarded = Agent {
        label: "ocf:handoff:vip (duplicate_check=false)",
        bin: agent_bin("vip"),
        env: unguarded_env,
    };
    let theirs = Agent {
        label: "ocf:heartbeat:IPaddr2",
        bin: Path::new(HEARTBEAT).join("IPaddr2"),
        env,
    };
    let interval = [("OCF_RESKEY_CRM_meta_interval", "10000")];

    enter_netns(&s1.netns);
    let mut rows = Vec::new();
    rows.push(compare("meta-data", runs, &ours, &theirs, |a| {
        expect(a.label, "meta-data", a.run("meta-data", &[]), 0)
    }));
    rows.push(compare("validate-all", runs, &ours, &theirs, |a| {
        expect(a.label, "validate-all", a.run("validate-all", &[]), 0)
    }));
    rows.push(compare("probe (stopped)", runs, &ours, &theirs, |a| {
        expect(a.label, "probe", a.run("monitor", &[]), 7)
    }));
    expect(ours.label, "start", ours.run("start", &[]), 0);
    rows.push(compare("monitor", runs, &ours, &theirs, |a| {
        expect(a.label, "monitor", a.run("monitor", &interval), 0)
    }));
    expect(ours.label, "stop", ours.run("stop", &[]), 0);
    rows.push(compare(
        "start+stop (ARP in background)",
        runs,
        &ours,
        &theirs,
        |a| {
            expect(a.label, "start", a.run("start", &[]), 0)
                + expect(a.label, "stop", a.run("stop", &[]), 0)
        },
    ));
    rows.push(compare(
        "start+stop, guard off",
        runs,
        &unguarded,
        &theirs,
        |a| {
            expect(a.label, "start", a.run("start", &[]), 0)
                + expect(a.label, "stop", a.run("stop", &[]), 0)
        },
    ));
    print(
        "ocf:handoff:vip vs ocf:heartbeat:IPaddr2 (IPv4, veth in a namespace)",
        "handoff",
        "IPaddr2",
        &rows,
    );

    // A move from s1 to s2 as the peer sees it: from the start of `start`
    // on s2 until the peer's ARP entry holds s2's MAC.
    let mut sleeper = peer.command("sleep").arg("3600").spawn().expect("sleeper");
    let s2_mac = s2.mac();
    let moves = runs.min(10);
    let mut rows = Vec::new();
    for agent in [&ours, &unguarded, &theirs] {
        let mut times = Vec::new();
        for _ in 0..moves {
            enter_netns(&s1.netns);
            expect(agent.label, "start", agent.run("start", &[]), 0);
            let pinged = peer
                .command("ping")
                .args(["-c1", "-W2", ip])
                .stdout(Stdio::null())
                .status()
                .expect("ping");
            assert!(pinged.success(), "peer cannot reach {ip} on s1");
            // Linux ignores ARP updates within locktime (1 s) of the last.
            std::thread::sleep(Duration::from_millis(1100));
            expect(agent.label, "stop", agent.run("stop", &[]), 0);
            enter_netns(&s2.netns);
            let t = Instant::now();
            expect(agent.label, "start", agent.run("start", &[]), 0);
            while peer_mac(sleeper.id(), ip).as_deref() != Some(s2_mac.as_str()) {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "{}: the peer never learned s2",
                    agent.label
                );
                std::thread::sleep(Duration::from_micros(500));
            }
            times.push(t.elapsed());
            expect(agent.label, "stop", agent.run("stop", &[]), 0);
        }
        rows.push((agent.label, stats(times)));
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    println!("\nFrom `start` on the new node to the peer's ARP entry pointing at it ({moves} moves each):\n");
    println!("| agent | median ms | min ms |");
    println!("|---|---|---|");
    for (label, s) in rows {
        println!("| {label} | {:.1} | {:.1} |", s.median, s.min);
    }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the benchmark mounts filesystems and needs root");
        return;
    }
    // A private mount namespace for the whole run: no nsenter in the timings.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount namespace");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    println!("# handoff benchmark: {runs} runs per action, interleaved, after 3 warm-up runs");
    if want("fs") {
        bench_fs(runs);
    }
    if want("vip") {
        bench_vip(runs);
    }
}
