//! resource-agents' own ocf-tester, run on ocf:handoff:fs with ext4 and xfs.

use handoff_tests::util::{agent_bin, have};
use handoff_tests::{needs_root, Lan, LoopDev, Sandbox, Scratch};

fn ocf_tester(fstype: &str) {
    let scratch = Scratch::new(&format!("ocf-tester-{fstype}"));
    let dev = match fstype {
        "xfs" => LoopDev::xfs(scratch.path(), "disk"),
        _ => LoopDev::ext4(scratch.path(), "disk"),
    };
    let sb = Sandbox::new();
    let out = sb
        .command("ocf-tester")
        .args(["-n", "fs1"])
        .args(["-o", &format!("device={}", dev.dev())])
        .args([
            "-o",
            &format!("directory={}", scratch.join("mnt").display()),
        ])
        .args(["-o", &format!("fstype={fstype}")])
        .arg(agent_bin("fs"))
        .env("HA_RSCTMP", scratch.join("rsctmp"))
        .output()
        .expect("ocf-tester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ocf-tester failed:\n{text}");
    assert!(text.contains("passed all tests"), "{text}");
    // The optional reload action is implemented, so ocf-tester does not
    // report it missing.
    assert!(
        !text.contains("does not support the reload action"),
        "{text}"
    );
    assert!(
        !sb.is_mounted(&scratch.join("mnt")),
        "ocf-tester left it mounted"
    );
}

#[test]
fn ocf_tester_passes_on_ext4() {
    needs_root!("ocf_tester_passes_on_ext4");
    if have("ocf-tester", "ocf_tester_passes_on_ext4") {
        ocf_tester("ext4");
    }
}

#[test]
fn ocf_tester_passes_on_xfs() {
    needs_root!("ocf_tester_passes_on_xfs");
    if have("ocf-tester", "ocf_tester_passes_on_xfs") {
        ocf_tester("xfs");
    }
}

fn ocf_tester_vip(ip: &str) {
    let scratch = Scratch::new("ocf-tester-vip");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    let out = srv
        .command("ocf-tester")
        .args(["-n", "vip1"])
        .args(["-o", &format!("ip={ip}")])
        .args(["-o", "nodad=true"])
        .arg(agent_bin("vip"))
        .env("HA_RSCTMP", scratch.join("rsctmp"))
        .output()
        .expect("ocf-tester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ocf-tester failed:\n{text}");
    assert!(text.contains("passed all tests"), "{text}");
    assert!(
        !srv.addresses()
            .iter()
            .any(|l| l.contains(&format!(" {ip}/"))),
        "ocf-tester left {ip} behind"
    );
}

#[test]
fn ocf_tester_passes_on_vip_ipv4_and_ipv6() {
    needs_root!("ocf_tester_passes_on_vip_ipv4_and_ipv6");
    if have("ocf-tester", "ocf_tester_passes_on_vip_ipv4_and_ipv6") {
        ocf_tester_vip("192.0.2.100");
        ocf_tester_vip("2001:db8::100");
    }
}
