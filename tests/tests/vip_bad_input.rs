//! Bad input to ocf:handoff:vip: exit code and reason for each, from
//! validate-all and from start, and no change to the server's addresses,
//! routes, links or namespaces.

use std::process::Command;

use handoff_tests::util::stdout_ok;
use handoff_tests::{needs_root, BadInput, Host, Lan, Scratch};

const CASES: &[BadInput] = &[
    BadInput {
        name: "ip unset",
        set: &[("ip", "-")],
        code: 6,
        reason: "'ip' is required",
    },
    BadInput {
        name: "not an address",
        set: &[("ip", "192.0.2.300")],
        code: 6,
        reason: "not an IP address",
    },
    BadInput {
        name: "a host name",
        set: &[("ip", "nfs.example.com")],
        code: 6,
        reason: "not an IP address",
    },
    BadInput {
        name: "address with prefix",
        set: &[("ip", "192.0.2.100/24")],
        code: 6,
        reason: "not an IP address",
    },
    BadInput {
        name: "multicast",
        set: &[("ip", "224.0.0.9")],
        code: 6,
        reason: "cannot be a service address",
    },
    BadInput {
        name: "shell in ip",
        set: &[("ip", "192.0.2.100;reboot")],
        code: 6,
        reason: "not an IP address",
    },
    BadInput {
        name: "prefix too long for IPv4",
        set: &[("cidr_netmask", "33")],
        code: 6,
        reason: "does not fit 192.0.2.100",
    },
    BadInput {
        name: "prefix out of range",
        set: &[("cidr_netmask", "129")],
        code: 6,
        reason: "1 to 32 for IPv4, 1 to 128 for IPv6",
    },
    BadInput {
        name: "prefix zero",
        set: &[("cidr_netmask", "0")],
        code: 6,
        reason: "expected a prefix length",
    },
    BadInput {
        name: "bad dotted netmask",
        set: &[("cidr_netmask", "255.0.255.0")],
        code: 6,
        reason: "expected a prefix length",
    },
    BadInput {
        name: "nic missing",
        set: &[("nic", "eth9")],
        code: 5,
        reason: "interface eth9 does not exist on this node",
    },
    BadInput {
        name: "nic with a space",
        set: &[("nic", "eth 0")],
        code: 6,
        reason: "no spaces or shell characters",
    },
    BadInput {
        name: "nic with shell characters",
        set: &[("nic", "eth0;reboot")],
        code: 6,
        reason: "no spaces or shell characters",
    },
    BadInput {
        name: "nic substitution",
        set: &[("nic", "$(reboot)")],
        code: 6,
        reason: "no spaces or shell characters",
    },
    BadInput {
        name: "nic too long",
        set: &[("nic", "a_very_long_name0")],
        code: 6,
        reason: "1 to 15 characters",
    },
    BadInput {
        name: "IPv6 on a nic without IPv6",
        set: &[
            ("ip", "2001:db8::100"),
            ("nic", "eth1"),
            ("cidr_netmask", "64"),
        ],
        code: 1,
        reason: "IPv6 is disabled on eth1",
    },
    BadInput {
        name: "IPv6 with broadcast",
        set: &[("ip", "2001:db8::100"), ("broadcast", "+")],
        code: 6,
        reason: "broadcast is for IPv4",
    },
    BadInput {
        name: "IPv6 with a label",
        set: &[("ip", "2001:db8::100"), ("iflabel", "x")],
        code: 6,
        reason: "for IPv4 addresses only",
    },
    BadInput {
        name: "link-local without nic",
        set: &[("ip", "fe80::99")],
        code: 6,
        reason: "link-local: set nic",
    },
    BadInput {
        name: "label too long",
        set: &[("nic", "eth0"), ("iflabel", "abcdefghijk")],
        code: 6,
        reason: "longer than the kernel's 15 characters",
    },
    BadInput {
        name: "label with a space",
        set: &[("iflabel", "a b")],
        code: 6,
        reason: "no spaces or shell characters",
    },
    BadInput {
        name: "no route for the address",
        set: &[("ip", "198.51.100.7")],
        code: 1,
        reason: "no route on this node contains 198.51.100.7",
    },
    BadInput {
        name: "two interfaces, same subnet",
        set: &[("ip", "203.0.113.9")],
        code: 1,
        reason: "equally well; set nic",
    },
    BadInput {
        // IPaddr2 refuses it too (findif matches routes no longer than
        // the prefix asked for), with the same exit code.
        name: "a prefix shorter than every route to the address",
        set: &[("cidr_netmask", "16")],
        code: 1,
        reason: "no route on this node contains 192.0.2.100",
    },
    BadInput {
        name: "a loopback address without nic",
        set: &[("ip", "127.0.0.3")],
        code: 6,
        reason: "set nic=lo",
    },
    BadInput {
        name: "a loopback address on another interface",
        set: &[("ip", "127.0.0.3"), ("nic", "eth0")],
        code: 6,
        reason: "eth0 is not the loopback interface",
    },
    BadInput {
        name: "the loopback interface's own address",
        set: &[("ip", "127.0.0.1"), ("nic", "lo")],
        code: 6,
        reason: "the loopback interface's own address",
    },
    BadInput {
        name: "arp_count negative",
        set: &[("arp_count", "-1")],
        code: 6,
        reason: "from 0 to 100",
    },
    BadInput {
        name: "arp_count absurd",
        set: &[("arp_count", "100000")],
        code: 6,
        reason: "from 0 to 100",
    },
    BadInput {
        name: "arp_interval zero",
        set: &[("arp_interval", "0")],
        code: 6,
        reason: "from 1 to 10000",
    },
    BadInput {
        name: "arp_sender unknown",
        set: &[("arp_sender", "ipoibarping")],
        code: 6,
        reason: "expected request or reply",
    },
    BadInput {
        name: "arp_bg not a boolean",
        set: &[("arp_bg", "sometimes")],
        code: 6,
        reason: "expected yes/true/1/on",
    },
    BadInput {
        name: "broadcast garbage",
        set: &[("broadcast", "all")],
        code: 6,
        reason: "expected an IPv4 address, + or -",
    },
    BadInput {
        name: "preferred_lft garbage",
        set: &[("preferred_lft", "never")],
        code: 6,
        reason: "forever or a number of seconds",
    },
    BadInput {
        name: "duplicate_wait garbage",
        set: &[("duplicate_wait", "long")],
        code: 6,
        reason: "expected a duration",
    },
    BadInput {
        name: "namespace missing",
        set: &[("network_namespace", "handoff_no_such_ns")],
        code: 5,
        reason: "does not exist on this node",
    },
    BadInput {
        name: "namespace name with shell",
        set: &[("network_namespace", "a;b")],
        code: 6,
        reason: "no spaces or shell characters",
    },
    BadInput {
        name: "unknown parameter",
        set: &[("cidr_mask", "24")],
        code: 6,
        reason: "unknown parameter 'cidr_mask'",
    },
];

/// Everything a bad start could change on the server.
fn snapshot(h: &Host, scratch: &Scratch) -> String {
    let netns = stdout_ok(Command::new("ip").args(["netns", "list"]));
    let netns: Vec<&str> = netns
        .lines()
        .filter(|l| l.contains(&h.netns[..h.netns.len() - 3]))
        .collect();
    // The kernel finishes DAD of link-local addresses on its own time.
    let addrs = h.ip_ok(&["-o", "addr"]).replace(" tentative", "");
    format!(
        "{}\n{}\n{}\n{:?}\n{}",
        addrs,
        h.routes(),
        h.ip_ok(&["-o", "link"])
            .lines()
            .map(|l| l.split(" link/").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n"),
        netns,
        stdout_ok(Command::new("find").arg(scratch.path()))
    )
}

#[test]
fn every_bad_input_gets_its_code_and_reason_and_changes_nothing() {
    needs_root!("every_bad_input_gets_its_code_and_reason_and_changes_nothing");
    let scratch = Scratch::new("vip-bad");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    // A second interface with IPv6 disabled, and a subnet on two interfaces.
    // (veth pairs inside the namespace: this kernel has no dummy driver.)
    srv.ip_ok(&[
        "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p",
    ]);
    srv.ip_ok(&[
        "link", "add", "eth2", "type", "veth", "peer", "name", "eth2p",
    ]);
    let off = srv
        .command("sysctl")
        .args(["-qw", "net.ipv6.conf.eth1.disable_ipv6=1"])
        .status()
        .unwrap();
    assert!(off.success());
    for dev in ["eth1", "eth1p", "eth2", "eth2p"] {
        srv.ip_ok(&["link", "set", dev, "up"]);
    }
    srv.ip_ok(&["addr", "add", "203.0.113.1/24", "dev", "eth1"]);
    srv.ip_ok(&["addr", "add", "203.0.113.2/24", "dev", "eth2"]);
    let base = srv
        .agent("vip")
        .param("ip", "192.0.2.100")
        .env("HA_RSCTMP", scratch.join("rsctmp").display());
    base.run("validate-all")
        .expect(0, "the good base configuration");
    for c in CASES {
        c.check(&base, || snapshot(srv, &scratch));
    }
}
