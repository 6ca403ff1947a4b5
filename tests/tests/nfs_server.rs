//! ocf:handoff:nfs-server on this machine, whose kernel has no nfsd: bad
//! input gets its code and reason and creates nothing, the missing nfsd is
//! reported as not installed, a stopped server probes 7 and stops 0, and a
//! network namespace that `ip netns` made is never taken or removed. The
//! server itself runs in the VM (vserver_vm.rs).

use std::path::Path;

use handoff_tests::util::{run_ok, stdout_ok};
use handoff_tests::{needs_root, AgentCmd, BadInput, Sandbox, Scratch};

/// A sandbox (own mount and network namespaces, own /run) with a nic (a
/// veth).
fn sandbox() -> Sandbox {
    let sb = Sandbox::with_net();
    // Namespace names live in /run/netns: each test has its own.
    run_ok(sb.command("mount").args(["-t", "tmpfs", "run", "/run"]));
    run_ok(sb.command("ip").args([
        "link", "add", "nic0", "type", "veth", "peer", "name", "nic0p",
    ]));
    run_ok(sb.command("ip").args(["link", "set", "nic0", "up"]));
    sb
}

fn server(sb: &Sandbox, scratch: &Scratch) -> AgentCmd {
    AgentCmd::new(sb, "nfs-server")
        .param("name", "nfs-t")
        .param("directory", scratch.join("srv/a").display())
        .param("ip", "192.0.2.100")
        .param("nic", "nic0")
        .env("HA_RSCTMP", scratch.join("rsctmp").display())
}

/// What the agent may create on a node: nothing of it must exist after a
/// refusal.
fn traces(sb: &Sandbox) -> String {
    // A directory that does not exist lists as nothing.
    let list = |dir: &str| {
        let out = sb.command("ls").args(["-A", dir]).output();
        String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default()).into_owned()
    };
    let (netns, servers) = (list("/run/netns"), list("/run/handoff/nfs-server"));
    let links = stdout_ok(sb.command("ip").args(["-o", "link"]));
    format!("{netns}|{servers}|{}", links.lines().count())
}

fn nfsd_in_kernel() -> bool {
    std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| t.contains("\tnfsd"))
}

const CASES: &[BadInput] = &[
    BadInput {
        name: "name unset",
        set: &[("name", "-")],
        code: 6,
        reason: "'name' is required",
    },
    BadInput {
        name: "name with a slash",
        set: &[("name", "../etc")],
        code: 6,
        reason: "starting with a letter or digit",
    },
    BadInput {
        name: "name with shell characters",
        set: &[("name", "a;reboot")],
        code: 6,
        reason: "up to 63 letters",
    },
    BadInput {
        name: "relative directory",
        set: &[("directory", "srv/a")],
        code: 6,
        reason: "absolute",
    },
    BadInput {
        name: "ip not an address",
        set: &[("ip", "nfs-a")],
        code: 6,
        reason: "not an IP address",
    },
    BadInput {
        name: "nic with spaces",
        set: &[("nic", "eth0 up")],
        code: 6,
        reason: "an interface name",
    },
    BadInput {
        name: "interface name too long",
        set: &[("interface", "a-very-long-name0")],
        code: 6,
        reason: "up to 15",
    },
    BadInput {
        name: "no threads",
        set: &[("threads", "0")],
        code: 6,
        reason: "from 1 to 1024",
    },
    BadInput {
        name: "nice value out of range",
        set: &[("daemon_nice", "-25")],
        code: 6,
        reason: "from -20 to 19",
    },
    BadInput {
        name: "grace too short",
        set: &[("grace_time", "1")],
        code: 6,
        reason: "from 5 to 3600",
    },
    BadInput {
        name: "state directory outside the export",
        set: &[("state_dir", "../nfs")],
        code: 6,
        reason: "inside the exported filesystem",
    },
    BadInput {
        name: "notify_name that is an option",
        set: &[("notify_name", "-v")],
        code: 6,
        reason: "a host name",
    },
];

#[test]
fn bad_input_gets_its_code_and_reason_and_creates_nothing() {
    needs_root!("bad_input_gets_its_code_and_reason_and_creates_nothing");
    let scratch = Scratch::new("nfs-server-bad");
    let sb = sandbox();
    let base = server(&sb, &scratch);
    for c in CASES {
        c.check(&base, || traces(&sb));
    }
}

#[test]
fn a_kernel_without_nfsd_is_not_installed_and_nothing_changes() {
    needs_root!("a_kernel_without_nfsd_is_not_installed_and_nothing_changes");
    if nfsd_in_kernel() {
        // Not a skip: this case needs a kernel without nfsd, and the VM
        // suites cover the other.
        eprintln!("this kernel has nfsd: the case of a kernel without it does not apply here");
        return;
    }
    let scratch = Scratch::new("nfs-server-nonfsd");
    let sb = sandbox();
    let before = traces(&sb);
    let s = server(&sb, &scratch);
    for action in ["validate-all", "start"] {
        let out = s.run(action);
        out.expect(5, action);
        assert!(
            out.reason().unwrap_or_default().contains("nfsd"),
            "{action}: {}",
            out.stderr
        );
    }
    let missing = s.clone().param("nic", "nic9");
    // The kernel is checked before the node's interfaces.
    missing
        .run("validate-all")
        .expect(5, "validate-all, nic missing too");
    s.run("monitor").expect(7, "probe of a stopped server");
    s.run("stop").expect(0, "stop of a stopped server");
    assert_eq!(traces(&sb), before);
}

#[test]
fn a_namespace_ip_netns_made_is_never_taken_or_removed() {
    needs_root!("a_namespace_ip_netns_made_is_never_taken_or_removed");
    let scratch = Scratch::new("nfs-server-foreign");
    let sb = sandbox();
    run_ok(sb.command("ip").args(["netns", "add", "nfs-t"]));
    let s = server(&sb, &scratch);
    s.run("monitor")
        .expect(7, "monitor: not ours, so not running here");
    let out = s.run("stop");
    out.expect(6, "stop");
    assert!(
        out.reason()
            .unwrap_or_default()
            .contains("not made by nfs-server"),
        "{}",
        out.stderr
    );
    assert!(
        stdout_ok(sb.command("ip").args(["netns", "list"])).contains("nfs-t"),
        "the namespace ip netns made was removed"
    );
    assert!(!Path::new("/run/handoff/nfs-server/nfs-t").exists());
    run_ok(sb.command("ip").args(["netns", "delete", "nfs-t"]));
}
