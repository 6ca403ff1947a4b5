//! handoff's agents beside the ClusterLabs agents they replace, in the same
//! situation on the same machine: what each returns, case by case. Every
//! row where the exit codes differ is one of the README's deliberate
//! differences; every other row must agree.

use std::path::Path;

use handoff_tests::util::{have, run_ok, skip};
use handoff_tests::{needs_root, AgentCmd, Host, Lan, LoopDev, Sandbox, Scratch};

/// Whether Debian's resource-agents provides `agent`; the comparison is
/// this test's point, so without it the test cannot run.
fn clusterlabs_present(agent: &str, test: &str) -> bool {
    let path = Path::new("/usr/lib/ocf/resource.d/heartbeat").join(agent);
    if path.exists() {
        return true;
    }
    skip(
        test,
        &format!("{} is missing (install resource-agents)", path.display()),
    );
    false
}

/// One situation for vip and IPaddr2: the parameters, the exit code each
/// agent's start gives, and the prefix the address gets from an agent
/// that starts it.
struct VipCase {
    name: &'static str,
    set: &'static [(&'static str, &'static str)],
    handoff: i32,
    clusterlabs: i32,
    prefix: Option<&'static str>,
}

const VIP_CASES: &[VipCase] = &[
    VipCase {
        name: "cidr_netmask longer than the route, no nic",
        set: &[("ip", "192.0.2.50"), ("cidr_netmask", "28")],
        handoff: 0,
        clusterlabs: 0,
        prefix: Some("28"),
    },
    VipCase {
        // ip route's "match" takes routes no longer than the prefix asked
        // for, so findif finds none; vip says the same, with the same code.
        name: "cidr_netmask shorter than every route, no nic",
        set: &[("ip", "192.0.2.50"), ("cidr_netmask", "16")],
        handoff: 1,
        clusterlabs: 1,
        prefix: None,
    },
    VipCase {
        name: "IPv6 with a forced longer prefix, no nic",
        set: &[("ip", "2001:db8::50"), ("cidr_netmask", "80")],
        handoff: 0,
        clusterlabs: 0,
        prefix: Some("80"),
    },
    VipCase {
        name: "IPv6 with a prefix shorter than the route, no nic",
        set: &[("ip", "2001:db8::50"), ("cidr_netmask", "48")],
        handoff: 1,
        clusterlabs: 1,
        prefix: None,
    },
    VipCase {
        name: "broadcast alone",
        set: &[("ip", "192.0.2.50"), ("broadcast", "192.0.2.255")],
        handoff: 0,
        clusterlabs: 0,
        prefix: Some("24"),
    },
    VipCase {
        name: "a loopback address on lo",
        set: &[("ip", "127.0.0.3"), ("nic", "lo")],
        handoff: 0,
        clusterlabs: 0,
        prefix: Some("8"),
    },
    VipCase {
        name: "a loopback address on lo with a prefix",
        set: &[("ip", "127.0.0.3"), ("nic", "lo"), ("cidr_netmask", "32")],
        handoff: 0,
        clusterlabs: 0,
        prefix: Some("32"),
    },
    VipCase {
        name: "a loopback address without nic (deliberate)",
        set: &[("ip", "127.0.0.3")],
        handoff: 6,
        clusterlabs: 0,
        prefix: Some("8"),
    },
    VipCase {
        name: "no route for the address",
        set: &[("ip", "198.51.100.7")],
        handoff: 1,
        clusterlabs: 1,
        prefix: None,
    },
    VipCase {
        name: "a forced nic without a route for the address",
        set: &[("ip", "198.51.100.7"), ("nic", "eth0")],
        handoff: 1,
        clusterlabs: 1,
        prefix: None,
    },
    VipCase {
        name: "a nic that does not exist (deliberate)",
        set: &[("ip", "192.0.2.50"), ("nic", "eth9")],
        handoff: 5,
        clusterlabs: 6,
        prefix: None,
    },
    VipCase {
        name: "two interfaces on the address's subnet (deliberate)",
        set: &[("ip", "198.51.100.200")],
        handoff: 1,
        clusterlabs: 0,
        prefix: Some("25"),
    },
];

/// Parameters of one case, as (name, value).
type Params<'a> = &'a [(&'a str, &'a str)];

/// vip, or the ClusterLabs agent named `agent`, run on `h`.
fn address_agent(h: &Host, scratch: &Scratch, agent: &str) -> AgentCmd {
    let a = h.agent("vip").env(
        "HA_RSCTMP",
        scratch.join(&format!("rsctmp-{agent}")).display(),
    );
    if agent == "vip" {
        a
    } else {
        a.clusterlabs(agent)
    }
}

fn with(base: &AgentCmd, set: &[(&str, &str)]) -> AgentCmd {
    set.iter()
        .fold(base.clone(), |a, (k, v)| a.param(k, v))
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
}

/// The prefix `ip` has on this host, if it is there.
fn prefix_of(h: &Host, ip: &str) -> Option<String> {
    h.ip_ok(&["-o", "addr"])
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{ip}/")).map(str::to_owned))
}

#[test]
fn vip_and_ipaddr2_side_by_side() {
    needs_root!("vip_and_ipaddr2_side_by_side");
    if !clusterlabs_present("IPaddr2", "vip_and_ipaddr2_side_by_side") {
        return;
    }
    let scratch = Scratch::new("dropin-vip");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    // Two more interfaces on one subnet, 198.51.100.128/25, for the
    // ambiguous case (veth pairs: this kernel has no dummy driver);
    // 198.51.100.7 stays without a route.
    for (dev, peer, addr) in [
        ("eth1", "eth1p", "198.51.100.129/25"),
        ("eth2", "eth2p", "198.51.100.130/25"),
    ] {
        srv.ip_ok(&["link", "add", dev, "type", "veth", "peer", "name", peer]);
        srv.ip_ok(&["link", "set", peer, "up"]);
        srv.ip_ok(&["link", "set", dev, "up"]);
        srv.ip_ok(&["addr", "add", addr, "dev", dev]);
    }
    let mut failures = Vec::new();
    for c in VIP_CASES {
        for (agent, want) in [("vip", c.handoff), ("IPaddr2", c.clusterlabs)] {
            let a = with(&address_agent(srv, &scratch, agent), c.set);
            let ip = c.set.iter().find(|(k, _)| *k == "ip").map_or("", |p| p.1);
            let out = a.run("start");
            let got = prefix_of(srv, ip);
            if out.code != want {
                failures.push(format!(
                    "{}: {agent} start gave {} (expected {want}): {}",
                    c.name,
                    out.code,
                    out.reason().unwrap_or(out.stderr.trim())
                ));
            } else if want == 0 && got.as_deref() != c.prefix {
                failures.push(format!(
                    "{}: {agent} put {ip} with prefix {got:?}, expected {:?}",
                    c.name, c.prefix
                ));
            }
            let stop = a.run("stop");
            if stop.code != 0 || prefix_of(srv, ip).is_some() {
                failures.push(format!(
                    "{}: {agent} stop gave {} and left {ip}: {:?}",
                    c.name,
                    stop.code,
                    prefix_of(srv, ip)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn vip_and_ipaddr2_when_the_nic_vanishes() {
    needs_root!("vip_and_ipaddr2_when_the_nic_vanishes");
    if !clusterlabs_present("IPaddr2", "vip_and_ipaddr2_when_the_nic_vanishes") {
        return;
    }
    let scratch = Scratch::new("dropin-nic");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    // (parameters, vip's recurring monitor, IPaddr2's): IPaddr2 answers
    // "not running" when nic and cidr_netmask are both set (it skips
    // findif) and OCF_ERR_GENERIC otherwise; vip says failed either way
    // (deliberate). A probe says not running in all four.
    let with_prefix: &[(&str, &str)] = &[
        ("ip", "198.51.100.50"),
        ("nic", "eth1"),
        ("cidr_netmask", "24"),
    ];
    let rows: [(Params, i32, i32); 2] = [
        (&[("ip", "198.51.100.50"), ("nic", "eth1")], 1, 1),
        (with_prefix, 1, 7),
    ];
    let mut failures = Vec::new();
    for (set, vip_code, ipaddr2_code) in rows {
        for (agent, want) in [("vip", vip_code), ("IPaddr2", ipaddr2_code)] {
            srv.ip_ok(&[
                "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
            ]);
            srv.ip_ok(&["link", "set", "eth1p", "up"]);
            srv.ip_ok(&["link", "set", "eth1", "up"]);
            srv.ip_ok(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]);
            let a = with(&address_agent(srv, &scratch, agent), set);
            a.run("start").expect(0, &format!("{agent} start"));
            srv.ip_ok(&["link", "del", "eth1"]);
            let out = a
                .clone()
                .env("OCF_RESKEY_CRM_meta_interval", "10000")
                .run("monitor");
            if out.code != want {
                failures.push(format!(
                    "{agent} {set:?}: monitor after eth1 vanished gave {} (expected {want})",
                    out.code
                ));
            }
            a.clone()
                .env("OCF_RESKEY_CRM_meta_interval", "0")
                .run("monitor")
                .expect(7, &format!("{agent} probe after eth1 vanished"));
            a.run("stop")
                .expect(0, &format!("{agent} stop after eth1 vanished"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fs_and_filesystem_when_the_kernel_remounts_read_only() {
    needs_root!("fs_and_filesystem_when_the_kernel_remounts_read_only");
    if !clusterlabs_present(
        "Filesystem",
        "fs_and_filesystem_when_the_kernel_remounts_read_only",
    ) || !have(
        "mkfs.ext4",
        "fs_and_filesystem_when_the_kernel_remounts_read_only",
    ) {
        return;
    }
    let scratch = Scratch::new("dropin-fs");
    let dev = LoopDev::new(scratch.path(), "disk", 64, Some("ext4"), None);
    let sb = Sandbox::new();
    let dir = scratch.join("mnt/a");
    std::fs::create_dir_all(&dir).expect("mount point");
    let base = AgentCmd::new(&sb, "fs")
        .param("device", dev.dev())
        .param("directory", dir.display())
        .param("fstype", "ext4")
        .env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000");
    // (depth, handoff, ClusterLabs) for a mount the kernel made read-only
    // although the options ask for rw. Depth 0: deliberate.
    let rows = [(0, 1, 0), (10, 1, 0), (20, 1, 1)];
    let mut failures = Vec::new();
    for agent in ["fs", "Filesystem"] {
        let a = if agent == "fs" {
            base.clone()
        } else {
            base.clone().clusterlabs("Filesystem")
        }
        .env(
            "HA_RSCTMP",
            scratch.join(&format!("rsctmp-{agent}")).display(),
        );
        a.run("start").expect(0, &format!("{agent} start"));
        for (depth, _, _) in rows {
            a.clone()
                .env("OCF_CHECK_LEVEL", depth)
                .run("monitor")
                .expect(0, &format!("{agent} monitor at depth {depth}, rw"));
        }
        // What errors=remount-ro does after an I/O error: the superblock
        // turns read-only under the mount.
        run_ok(sb.command("mount").args(["-o", "remount,ro"]).arg(&dir));
        for (depth, handoff, clusterlabs) in rows {
            let want = if agent == "fs" { handoff } else { clusterlabs };
            let out = a.clone().env("OCF_CHECK_LEVEL", depth).run("monitor");
            if out.code != want {
                failures.push(format!(
                    "{agent} monitor at depth {depth} of a read-only mount gave {} (expected {want}): {}",
                    out.code,
                    out.reason().unwrap_or(out.stderr.trim())
                ));
            }
        }
        a.run("stop").expect(0, &format!("{agent} stop"));
        assert!(
            !sb.is_mounted(&dir),
            "{agent} left {} mounted",
            dir.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
