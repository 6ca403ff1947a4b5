//! Failover of one export group under a real two-node Pacemaker cluster on
//! this machine, handoff's agents (fs, export, vip) and the ClusterLabs
//! agents for the same job (Filesystem, exportfs, IPaddr2) side by side in
//! one cluster, moved in turns with `crm_resource --move`. For each move:
//! from the command to the address answering from the other node, and the
//! pings a client lost on the other export (a handoff group that never
//! moves). Run with `ci/bench failover`, or:
//!
//!     HANDOFF_BIN_DIR=target/release cargo bench -p handoff-tests --bench failover
//!
//! This machine's kernel has no nfsd: the groups export through mountd's
//! table, without locks (the VM suites measure those).

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use handoff_tests::plot::Plot;
use handoff_tests::util::{have, workspace_root};
use handoff_tests::{timeline, wait_until, Cluster, LoopDev, Scratch};

/// A group's members in start order: resource suffix, agent, parameters.
type Members = Vec<(&'static str, String, Vec<String>)>;

/// One export group of the benchmark.
struct Group {
    name: &'static str,
    label: &'static str,
    vip: &'static str,
    /// (resource suffix, agent, parameters) in start order.
    members: fn(&str, &str, &str, usize) -> Members,
}

fn handoff(dev: &str, dir: &str, vip: &str, fsid: usize) -> Members {
    vec![
        (
            "fs",
            "ocf:handoff:fs".into(),
            vec![
                format!("device={dev}"),
                format!("directory={dir}"),
                "fstype=ext4".into(),
            ],
        ),
        (
            "export",
            "ocf:handoff:export".into(),
            vec![
                format!("directory={dir}"),
                format!("fsid={fsid}"),
                "clientspec=192.0.2.0/24".into(),
            ],
        ),
        (
            "vip",
            "ocf:handoff:vip".into(),
            vec![
                format!("ip={vip}"),
                "cidr_netmask=24".into(),
                "nic=eth0".into(),
            ],
        ),
    ]
}

/// handoff without the vip's duplicate-address guard (the 100 ms probe that
/// IPaddr2 does not make), to compare like with like.
fn handoff_unguarded(dev: &str, dir: &str, vip: &str, fsid: usize) -> Members {
    let mut m = handoff(dev, dir, vip, fsid);
    if let Some((_, _, params)) = m.last_mut() {
        params.push("duplicate_check=false".into());
    }
    m
}

fn clusterlabs(dev: &str, dir: &str, vip: &str, fsid: usize) -> Members {
    vec![
        (
            "fs",
            "ocf:heartbeat:Filesystem".into(),
            vec![
                format!("device={dev}"),
                format!("directory={dir}"),
                "fstype=ext4".into(),
            ],
        ),
        (
            "export",
            "ocf:heartbeat:exportfs".into(),
            vec![
                format!("directory={dir}"),
                format!("fsid={fsid}"),
                "clientspec=192.0.2.0/24".into(),
                "options=rw".into(),
            ],
        ),
        (
            "vip",
            "ocf:heartbeat:IPaddr2".into(),
            vec![
                format!("ip={vip}"),
                "cidr_netmask=24".into(),
                "nic=eth0".into(),
            ],
        ),
    ]
}

const GROUPS: [Group; 4] = [
    Group {
        name: "hand",
        label: "handoff (fs, export, vip)",
        vip: "192.0.2.100",
        members: handoff,
    },
    Group {
        name: "fast",
        label: "handoff, vip duplicate_check=false",
        vip: "192.0.2.102",
        members: handoff_unguarded,
    },
    Group {
        name: "cl",
        label: "ClusterLabs (Filesystem, exportfs, IPaddr2)",
        vip: "192.0.2.110",
        members: clusterlabs,
    },
    Group {
        name: "other",
        label: "",
        vip: "192.0.2.101",
        members: handoff,
    },
];

fn create(c: &Cluster, g: &Group, fsid: usize, dev: &str, dir: &str, node: &str) {
    let grp = format!("g_{}", g.name);
    for (suffix, agent, params) in (g.members)(dev, dir, g.vip, fsid) {
        let mut args = vec![
            "resource".to_owned(),
            "create".into(),
            format!("{}_{suffix}", g.name),
            agent,
        ];
        args.extend(params);
        args.extend(["op", "monitor", "interval=10s", "--group", &grp].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c.any().pcs(&args);
    }
    c.any().pcs(&[
        "constraint",
        "location",
        &grp,
        "prefers",
        &format!("{node}=50"),
    ]);
}

/// Whether the client gets an answer from `ip` through `node`'s interface
/// (its MAC in the client's neighbour table).
fn answers_from(c: &Cluster, ip: &str, mac: &str) -> bool {
    let ok = c
        .client("ping")
        .args(["-n", "-c", "1", "-W", "0.05", ip])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok && c
        .client("ip")
        .args(["neigh", "show", ip])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(mac))
}

fn mac(c: &Cluster, node: &str) -> String {
    let out = c.node(node).output("cat", &["/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The agents' own time for one move, from the CIB's status section: the
/// exec-time of each member's last stop on `from` and last start on `to`.
fn agents_ms(c: &Cluster, g: &Group, from: &str, to: &str) -> f64 {
    use quick_xml::events::Event;
    let status = c.any().ok("cibadmin", &["--query", "--scope", "status"]);
    let mut reader = quick_xml::Reader::from_str(&status);
    let (mut node, mut total) = (String::new(), 0.0);
    loop {
        let e = match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => e,
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => continue,
        };
        let attr = |k: &str| {
            e.try_get_attribute(k)
                .ok()
                .flatten()
                .and_then(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .ok()
                        .map(|v| v.into_owned())
                })
                .unwrap_or_default()
        };
        match e.name().0 {
            "node_state" => node = attr("uname"),
            "lrm_rsc_op" => {
                let id = attr("id");
                let mine = id.starts_with(&format!("{}_", g.name)) && id.ends_with("_last_0");
                let op = attr("operation");
                if mine && ((node == from && op == "stop") || (node == to && op == "start")) {
                    total += attr("exec-time").parse::<f64>().unwrap_or(f64::NAN);
                }
            }
            _ => {}
        }
    }
    total
}

/// `ping -D` replies as [Unix ms, round trip ms].
fn pings(text: &str) -> serde_json::Value {
    text.lines()
        .filter_map(|l| {
            let stamp = l
                .strip_prefix('[')?
                .split(']')
                .next()?
                .parse::<f64>()
                .ok()?;
            let rtt = l
                .split("time=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<f64>()
                .ok()?;
            Some(serde_json::json!([(stamp * 1000.0) as u64, rtt]))
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the benchmark runs a Pacemaker cluster and needs root");
        return;
    }
    for p in ["pacemakerd", "corosync", "pcs", "exportfs", "ping"] {
        if !have(p, "failover benchmark") {
            return;
        }
    }
    let moves: usize = std::env::var("BENCH_MOVES")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let scratch = Scratch::new("bench-failover");
    let disks: Vec<LoopDev> = GROUPS
        .iter()
        .map(|g| LoopDev::ext4(scratch.path(), g.name))
        .collect();
    let c = Cluster::start(2);
    c.wait_online(Duration::from_secs(120));
    for (i, (g, d)) in GROUPS.iter().zip(&disks).enumerate() {
        let dir = scratch
            .join(&format!("srv/{}", g.name))
            .display()
            .to_string();
        let node = if g.name == "other" { "n2" } else { "n1" };
        // Exports on one node need their own fsids.
        create(&c, g, 11 + i, &d.dev(), &dir, node);
    }
    for g in &GROUPS {
        let node = if g.name == "other" { "n2" } else { "n1" };
        let vip = format!("{}_vip", g.name);
        let up = c.wait_location(&vip, Some(node), Duration::from_secs(120));
        let xml = c.any().crm_mon_xml();
        let failures: Vec<&str> = xml
            .lines()
            .filter(|l| l.contains("<failure ") || l.contains(&format!("\"{}_", g.name)))
            .collect();
        assert!(
            up,
            "{} did not start on {node} (it is on {:?}): {}",
            g.name,
            c.location(&vip),
            failures.join("\n")
        );
    }
    // Stickiness only now: a group that started before its location
    // constraint existed has moved where it belongs.
    c.any()
        .pcs(&["resource", "defaults", "update", "resource-stickiness=100"]);
    let macs = [("n1", mac(&c, "n1")), ("n2", mac(&c, "n2"))];
    let mut results: Vec<(Vec<f64>, u32, u32)> = vec![(Vec::new(), 0, 0); 3];
    let mut agents: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut at = "n1";
    // The first round as a picture: the other export's pings, the moves,
    // and handoff's agents' spans (the ClusterLabs agents log no spans).
    let plot_t0 = SystemTime::now();
    let mut plot = Plot::new(
        "failover-timeline",
        "one move of each group (crm_resource --move); the pings of the export that stays",
    );
    for round in 0..moves * 2 {
        let to = if at == "n1" { "n2" } else { "n1" };
        let to_mac = &macs.iter().find(|(n, _)| *n == to).expect("mac").1;
        // Interleaved: each round moves every measured group, one after the other.
        for (i, g) in GROUPS[..3].iter().enumerate() {
            let pinger = c
                .client("ping")
                .args(["-D", "-n", "-i", "0.05", GROUPS[3].vip])
                .stdout(Stdio::piped())
                .spawn()
                .expect("ping");
            std::thread::sleep(Duration::from_millis(300));
            let (t, issued) = (Instant::now(), SystemTime::now());
            c.any().ok(
                "crm_resource",
                &[
                    "--move",
                    "--resource",
                    &format!("g_{}", g.name),
                    "--node",
                    to,
                ],
            );
            let up = wait_until(Duration::from_secs(120), Duration::from_millis(10), || {
                answers_from(&c, g.vip, to_mac)
            });
            let took = t.elapsed().as_secs_f64() * 1000.0;
            assert!(up, "{} did not answer from {to}", g.name);
            c.any().ok(
                "crm_resource",
                &["--clear", "--resource", &format!("g_{}", g.name)],
            );
            std::thread::sleep(Duration::from_millis(300));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pinger.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let out = pinger.wait_with_output().expect("ping output");
            let text = String::from_utf8_lossy(&out.stdout);
            let num = |w: &str| {
                text.lines()
                    .find(|l| l.contains("transmitted"))
                    .and_then(|l| l.split(", ").find(|p| p.contains(w)))
                    .and_then(|p| p.split(' ').next()?.parse::<u32>().ok())
                    .unwrap_or(0)
            };
            let (sent, got) = (num("transmitted"), num("received"));
            if round == 0 {
                plot.series(
                    plot_t0,
                    &format!("other export's pings during {}'s move", g.name),
                    &pings(&text),
                );
                plot.window(
                    plot_t0,
                    &format!("{}: move command to the address answering", g.name),
                    issued,
                    issued + Duration::from_secs_f64(took / 1000.0),
                );
            }
            agents[i].push(agents_ms(&c, g, at, to));
            results[i].0.push(took);
            results[i].1 += sent;
            results[i].2 += sent.saturating_sub(got);
            eprintln!(
                "round {round}: {} to {to} in {took:.0} ms; other export {got}/{sent} pings",
                g.name
            );
        }
        at = to;
        if round == 0 {
            let events = timeline::events(&c, plot_t0);
            for g in &GROUPS[..3] {
                plot.spans(plot_t0, &events, &format!("{}_", g.name));
            }
            let dir = workspace_root().join("target/bench");
            match plot.write(&dir) {
                Ok(path) => eprintln!("timeline plot of round 0: {}", path.display()),
                Err(e) => eprintln!("timeline plot not written: {e}"),
            }
        }
    }
    println!(
        "\n# failover of one export group, live two-node cluster, {} moves each, interleaved",
        moves * 2
    );
    println!("\n| group | median: move command to the address answering from the other node (ms) | min (ms) | median: the agents' stops and starts, CIB exec-time sum (ms) | other export: pings lost |");
    println!("| --- | --- | --- | --- | --- |");
    for ((g, (times, sent, lost)), own) in GROUPS[..3].iter().zip(&results).zip(&agents) {
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {lost} of {sent} |",
            g.label,
            median(times.clone()),
            min,
            median(own.clone())
        );
    }
    for (i, what) in [(0, "handoff"), (1, "handoff without the guard")] {
        let ratio = median(results[2].0.clone()) / median(results[i].0.clone());
        let own = median(agents[2].clone()) / median(agents[i].clone());
        println!(
            "\nClusterLabs / {what}, medians: {ratio:.2}x end to end, {own:.2}x in the agents"
        );
    }
}
