//! Pacemaker's crm_resource driving ocf:handoff:fs without a cluster:
//! --validate with good and bad options, and --force-start/check/stop.

use handoff_tests::util::{have, stage_provider};
use handoff_tests::{needs_root, LoopDev, Sandbox, Scratch};

struct Env {
    sb: Sandbox,
    dev: LoopDev,
    scratch: Scratch,
}

fn env() -> Env {
    let scratch = Scratch::new("crm-resource");
    let dev = LoopDev::ext4(scratch.path(), "disk");
    let sb = Sandbox::new();
    sb.overlay_ocf(&stage_provider(scratch.path()), scratch.path());
    Env { sb, dev, scratch }
}

/// crm_resource with --class/--provider/--agent and options; (code, output).
fn crm(e: &Env, what: &str, opts: &[(&str, String)]) -> (i32, String) {
    let mut cmd = e.sb.command("crm_resource");
    cmd.arg(what).args([
        "--class",
        "ocf",
        "--provider",
        "handoff",
        "--agent",
        "fs",
        "--output-as=xml",
    ]);
    for (k, v) in opts {
        cmd.arg("--option").arg(format!("{k}={v}"));
    }
    cmd.env("HA_RSCTMP", e.scratch.join("rsctmp"));
    let out = cmd.output().expect("crm_resource");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn good(e: &Env) -> Vec<(&'static str, String)> {
    vec![
        ("device", e.dev.dev()),
        ("directory", e.scratch.join("mnt").display().to_string()),
    ]
}

#[test]
fn validate_gives_the_documented_code_and_reason() {
    needs_root!("validate_gives_the_documented_code_and_reason");
    if !have(
        "crm_resource",
        "validate_gives_the_documented_code_and_reason",
    ) {
        return;
    }
    let e = env();
    let (code, out) = crm(&e, "--validate", &good(&e));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(r#"code="0""#), "{out}");
    let cases: &[(&str, &str, i32, &str)] = &[
        (
            "device",
            "/dev/handoff-none",
            5,
            "does not exist on this node",
        ),
        ("device", "relative", 6, "absolute path"),
        ("fstype", "xfs", 2, "holds ext4, but fstype=xfs"),
        ("options", "ro,bind", 6, "would change what is mounted"),
        ("run_fsck", "often", 6, "expected one of: auto, force, no"),
    ];
    for (k, v, want, reason) in cases {
        let mut opts = good(&e);
        opts.retain(|(name, _)| name != k);
        opts.push((k, v.to_string()));
        let (code, out) = crm(&e, "--validate", &opts);
        assert_eq!(code, *want, "{k}={v}: {out}");
        // pcs reads the reason from this attribute.
        assert!(out.contains(&format!(r#"code="{want}""#)), "{k}={v}: {out}");
        assert!(
            out.contains("reason=\"") && out.contains(reason),
            "{k}={v}: {out}"
        );
    }
    let mut opts = good(&e);
    opts.retain(|(k, _)| *k != "directory");
    let (code, out) = crm(&e, "--validate", &opts);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("'directory' is required"), "{out}");
}

#[test]
fn force_start_check_stop() {
    needs_root!("force_start_check_stop");
    if !have("crm_resource", "force_start_check_stop") {
        return;
    }
    let e = env();
    let opts = good(&e);
    let mnt = e.scratch.join("mnt");
    assert_eq!(crm(&e, "--force-check", &opts).0, 7);
    let (code, out) = crm(&e, "--force-start", &opts);
    assert_eq!(code, 0, "{out}");
    assert!(e.sb.is_mounted(&mnt));
    assert_eq!(crm(&e, "--force-check", &opts).0, 0);
    let (code, out) = crm(&e, "--force-stop", &opts);
    assert_eq!(code, 0, "{out}");
    assert!(!e.sb.is_mounted(&mnt));
    assert_eq!(crm(&e, "--force-check", &opts).0, 7);
}

/// crm_resource for ocf:handoff:vip, in a LAN host's network namespace and
/// a sandbox's mount namespace (for the provider overlay).
#[test]
fn vip_validate_and_force_actions() {
    needs_root!("vip_validate_and_force_actions");
    if !have("crm_resource", "vip_validate_and_force_actions") {
        return;
    }
    let scratch = Scratch::new("crm-vip");
    let sb = Sandbox::new();
    sb.overlay_ocf(&stage_provider(scratch.path()), scratch.path());
    let lan = handoff_tests::Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    let crm = |what: &str, opts: &[&str]| {
        let mut cmd = std::process::Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", sb.pid()))
            .arg(format!("--net=/run/netns/{}", srv.netns))
            .args([
                "--",
                "crm_resource",
                what,
                "--class",
                "ocf",
                "--provider",
                "handoff",
                "--agent",
                "vip",
                "--output-as=xml",
            ])
            .env("HA_RSCTMP", scratch.join("rsctmp"));
        for o in opts {
            cmd.arg("--option").arg(o);
        }
        let out = cmd.output().expect("crm_resource");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let good = ["ip=192.0.2.100", "cidr_netmask=24"];
    assert_eq!(crm("--validate", &good).0, 0);
    let (code, out) = crm("--validate", &["ip=192.0.2.100", "nic=eth9"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("interface eth9 does not exist on this node"),
        "{out}"
    );
    let (code, out) = crm("--validate", &["ip=not-an-ip"]);
    assert_eq!(code, 6, "{out}");
    assert_eq!(crm("--force-check", &good).0, 7);
    assert_eq!(crm("--force-start", &good).0, 0);
    assert!(srv
        .addresses()
        .iter()
        .any(|l| l.contains(" 192.0.2.100/24")));
    assert_eq!(crm("--force-check", &good).0, 0);
    assert_eq!(crm("--force-stop", &good).0, 0);
    assert_eq!(crm("--force-check", &good).0, 7);
}
