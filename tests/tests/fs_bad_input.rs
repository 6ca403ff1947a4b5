//! Bad input to ocf:handoff:fs: every case gets its exit code and an
//! `ocf-exit-reason:` that names the problem, from validate-all and from
//! start, and leaves the system exactly as it was.

use std::path::Path;
use std::process::Command;

use handoff_tests::agent::never_started;
use handoff_tests::util::{run_ok, stdout_ok};
use handoff_tests::{needs_root, AgentCmd, LoopDev, Sandbox, Scratch};

struct World {
    sb: Sandbox,
    dev: LoopDev,
    blank: LoopDev,
    scratch: Scratch,
}

/// Everything a bad start could change: mounts, files and directories
/// under the scratch tree (the mount point among them), state files.
fn snapshot(w: &World) -> String {
    let mounts: Vec<String> =
        w.sb.mountinfo()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let src = l.split(" - ").nth(1).unwrap_or("");
                format!("{} {}", f.get(4).unwrap_or(&""), src)
            })
            .collect();
    let tree = stdout_ok(
        Command::new("find")
            .arg(w.scratch.path())
            .args(["-printf", "%p %y %m\n"]),
    );
    // Only this test's devices: other tests attach theirs in parallel.
    let own = w.scratch.path().display().to_string();
    let loops: String = stdout_ok(Command::new("losetup").arg("-a"))
        .lines()
        .filter(|l| l.contains(&own))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{}\n--\n{tree}\n--\n{loops}", mounts.join("\n"))
}

struct Case {
    name: &'static str,
    /// Parameters changed from the good base; "-" unsets.
    set: &'static [(&'static str, &'static str)],
    /// Extra environment.
    env: &'static [(&'static str, &'static str)],
    /// Expected code of validate-all (None: not checked, e.g. runtime state).
    validate: Option<i32>,
    /// Expected code of start.
    start: i32,
    /// Text the exit reason must contain.
    reason: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "device unset",
        set: &[("device", "-")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "'device' is required",
    },
    Case {
        name: "device empty",
        set: &[("device", "")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "'device' is required",
    },
    Case {
        name: "device relative",
        set: &[("device", "loop0")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "absolute path",
    },
    Case {
        name: "device missing",
        set: &[("device", "/dev/handoff-no-such-disk")],
        env: &[],
        validate: Some(5),
        start: 5,
        reason: "does not exist on this node",
    },
    Case {
        name: "device is a file",
        set: &[("device", "{file}")],
        env: &[],
        validate: Some(2),
        start: 2,
        reason: "is not a block device",
    },
    Case {
        name: "two devices",
        set: &[("device", "/dev/loop0,/dev/loop1")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "give one device",
    },
    Case {
        name: "device with newline",
        set: &[("device", "/dev/loop0\n/dev/loop1")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "control character",
    },
    Case {
        name: "unknown UUID",
        set: &[("device", "UUID=00000000-0000-0000-0000-000000000000")],
        env: &[],
        validate: Some(5),
        start: 5,
        reason: "no block device on this node has UUID=",
    },
    Case {
        name: "malformed UUID",
        set: &[("device", "UUID=not-hex")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "hexadecimal",
    },
    Case {
        name: "directory unset",
        set: &[("directory", "-")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "'directory' is required",
    },
    Case {
        name: "directory relative",
        set: &[("directory", "srv/a")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "absolute path",
    },
    Case {
        name: "directory with ..",
        set: &[("directory", "{scratch}/../etc")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "'..'",
    },
    Case {
        name: "directory is /",
        set: &[("directory", "/")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "root filesystem",
    },
    Case {
        name: "directory is a file",
        set: &[("directory", "{file}")],
        env: &[],
        validate: Some(2),
        start: 2,
        reason: "is not a directory",
    },
    Case {
        name: "unknown fstype",
        set: &[("fstype", "nosuchfs")],
        env: &[],
        validate: Some(5),
        start: 5,
        reason: "kernel has no nosuchfs",
    },
    Case {
        name: "fstype without device",
        set: &[("fstype", "tmpfs")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "not a block-device filesystem",
    },
    Case {
        name: "fstype mismatch",
        set: &[("fstype", "xfs")],
        env: &[],
        validate: Some(2),
        start: 2,
        reason: "holds ext4, but fstype=xfs",
    },
    Case {
        name: "fstype with options",
        set: &[("fstype", "ext4,ro")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "short lowercase name",
    },
    Case {
        name: "blank device",
        set: &[("device", "{blank}")],
        env: &[],
        validate: Some(2),
        start: 2,
        reason: "no ext2/3/4, xfs or btrfs filesystem found",
    },
    Case {
        name: "options: bind",
        set: &[("options", "ro,bind")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "would change what is mounted",
    },
    Case {
        name: "options: loop",
        set: &[("options", "loop=/dev/loop7")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "would change what is mounted",
    },
    Case {
        name: "options: newline smuggles a mount",
        set: &[("options", "ro\n/dev/sdb /mnt ext4 rw")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "contains '\\n'",
    },
    Case {
        name: "options: spaces",
        set: &[("options", "ro /dev/sdb /mnt")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "contains ' '",
    },
    Case {
        name: "options: empty item",
        set: &[("options", "ro,,rw")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "empty option",
    },
    Case {
        name: "options: escaped NUL",
        set: &[("options", "ro\\0rw")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "contains '\\\\'",
    },
    Case {
        name: "options: shell",
        set: &[("options", "ro;reboot")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "contains ';'",
    },
    Case {
        name: "run_fsck word",
        set: &[("run_fsck", "sometimes")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "expected one of: auto, force, no",
    },
    Case {
        name: "force_unmount word",
        set: &[("force_unmount", "yes")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "expected one of: true, safe, false",
    },
    Case {
        name: "signal_delay",
        set: &[("signal_delay", "soon")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "expected a duration",
    },
    Case {
        name: "fast_stop",
        set: &[("fast_stop", "maybe")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "expected yes/true/1/on",
    },
    Case {
        name: "statusfile_prefix outside",
        set: &[("statusfile_prefix", "/etc/")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "relative to the mount point",
    },
    Case {
        name: "unknown parameter",
        set: &[("directroy", "/srv/a")],
        env: &[],
        validate: Some(6),
        start: 6,
        reason: "unknown parameter 'directroy'",
    },
    Case {
        name: "cloned",
        set: &[],
        env: &[("OCF_RESKEY_CRM_meta_clone", "0")],
        validate: Some(6),
        start: 6,
        reason: "configured as a clone",
    },
];

fn world() -> World {
    let scratch = Scratch::new("badinput");
    let dev = LoopDev::ext4(scratch.path(), "disk");
    let blank = LoopDev::new(scratch.path(), "blank", 16, None, None);
    std::fs::write(scratch.join("a-file"), b"not a device").unwrap();
    World {
        sb: Sandbox::new(),
        dev,
        blank,
        scratch,
    }
}

fn agent(w: &World) -> AgentCmd {
    AgentCmd::new(&w.sb, "fs")
        .param("device", w.dev.dev())
        .param("directory", w.scratch.join("mnt/a").display())
        .env("HA_RSCTMP", w.scratch.join("rsctmp").display())
}

fn expand(w: &World, v: &str) -> String {
    v.replace("{file}", &w.scratch.join("a-file").display().to_string())
        .replace("{blank}", &w.blank.dev())
        .replace("{scratch}", &w.scratch.path().display().to_string())
}

fn check(w: &World, a: &AgentCmd, action: &str, code: i32, reason: &str, name: &str) {
    let before = snapshot(w);
    let out = a.run(action);
    assert_eq!(
        out.code, code,
        "{name}: {action} exit code; stderr: {}",
        out.stderr
    );
    let r = out.reason().unwrap_or_else(|| {
        panic!(
            "{name}: {action} printed no ocf-exit-reason: {}",
            out.stderr
        )
    });
    assert!(
        r.contains(reason),
        "{name}: {action} reason {r:?} lacks {reason:?}"
    );
    assert_eq!(snapshot(w), before, "{name}: {action} changed the system");
}

#[test]
fn every_bad_input_gets_its_code_and_reason_and_changes_nothing() {
    needs_root!("every_bad_input_gets_its_code_and_reason_and_changes_nothing");
    let w = world();
    agent(&w)
        .run("validate-all")
        .expect(0, "the good base configuration");
    for c in CASES {
        let mut a = agent(&w);
        for (k, v) in c.set {
            a = if *v == "-" {
                a.unset(k)
            } else {
                a.param(k, expand(&w, v))
            };
        }
        for (k, v) in c.env {
            a = a.env(k, v);
        }
        if let Some(code) = c.validate {
            check(&w, &a, "validate-all", code, c.reason, c.name);
        }
        check(&w, &a, "start", c.start, c.reason, c.name);
        never_started(&a, c.name, &|| snapshot(&w));
    }
}

#[test]
fn runtime_refusals_change_nothing() {
    needs_root!("runtime_refusals_change_nothing");
    let w = world();
    let dir = w.scratch.join("mnt/a");
    let a = agent(&w);

    // The device is already mounted elsewhere on this node.
    let other = w.scratch.join("other");
    std::fs::create_dir_all(&other).unwrap();
    run_ok(w.sb.command("mount").arg(&w.dev.path).arg(&other));
    a.run("validate-all")
        .expect(0, "validate-all ignores runtime state");
    check(
        &w,
        &a,
        "start",
        1,
        "is already mounted at",
        "mounted elsewhere",
    );
    run_ok(w.sb.command("umount").arg(&other));

    // The device is held by the kernel outside this mount namespace.
    let elsewhere = Sandbox::new();
    run_ok(elsewhere.command("mount").arg(&w.dev.path).arg(&other));
    check(
        &w,
        &a,
        "start",
        1,
        "is in use",
        "mounted in another namespace",
    );
    drop(elsewhere);

    // Another filesystem already sits on the mount point.
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(
        w.sb.command("mount")
            .args(["-t", "tmpfs", "squatter"])
            .arg(&dir),
    );
    check(
        &w,
        &a,
        "start",
        1,
        "refusing to mount over it",
        "occupied mount point",
    );
    a.run("stop").expect(0, "stop leaves a foreign mount alone");
    assert!(
        w.sb.is_mounted(&dir),
        "stop unmounted a filesystem that is not its own"
    );
    run_ok(w.sb.command("umount").arg(&dir));

    // A filesystem mounted inside the mount point would be hidden.
    run_ok(w.sb.command("mkdir").arg("-p").arg(dir.join("inner")));
    run_ok(
        w.sb.command("mount")
            .args(["-t", "tmpfs", "inner"])
            .arg(dir.join("inner")),
    );
    check(
        &w,
        &a,
        "start",
        1,
        "mounting over it would hide it",
        "submount",
    );
    run_ok(w.sb.command("umount").arg(dir.join("inner")));

    // A label found on two devices.
    let twin_a = LoopDev::new(
        w.scratch.path(),
        "twin-a",
        64,
        Some("ext4"),
        Some("hf_twin"),
    );
    let twin_b = LoopDev::new(
        w.scratch.path(),
        "twin-b",
        64,
        Some("ext4"),
        Some("hf_twin"),
    );
    let twins = a.clone().param("device", "LABEL=hf_twin");
    check(
        &w,
        &twins,
        "start",
        1,
        "is on several devices",
        "duplicate label",
    );
    drop((twin_a, twin_b));

    // A mount that fails in the kernel (damaged superblock) leaves no
    // mount point behind.
    let broken = LoopDev::ext4(w.scratch.path(), "broken");
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "clri <2>"])
            .arg(&broken.path),
    );
    let b = a
        .clone()
        .param("device", broken.dev())
        .param("directory", w.scratch.join("fresh/deep").display());
    check(&w, &b, "start", 1, "failed", "mount refused by the kernel");
    assert!(
        !Path::new(&w.scratch.join("fresh")).exists(),
        "start left the mount point it created"
    );
}

#[test]
fn monitor_depth_must_be_known() {
    needs_root!("monitor_depth_must_be_known");
    let w = world();
    let a = agent(&w).env("OCF_CHECK_LEVEL", "15");
    check(
        &w,
        &a,
        "monitor",
        6,
        "OCF_CHECK_LEVEL=\"15\" is not supported",
        "check level",
    );
}

#[test]
fn unprivileged_start_is_refused() {
    needs_root!("unprivileged_start_is_refused");
    let w = world();
    let mut a = agent(&w);
    // setpriv drops to nobody inside the sandbox, just before the agent runs.
    let base = a.command(&["start"]);
    let mut cmd = Command::new("nsenter");
    let args: Vec<_> = base.get_args().collect();
    let split = args.iter().position(|x| *x == "--").unwrap();
    cmd.args(&args[..=split])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .args(&args[split + 1..]);
    cmd.env_clear()
        .envs(base.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    let before = snapshot(&w);
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ocf-exit-reason:start must run as root"));
    assert_eq!(snapshot(&w), before);
    a = a.env("OCF_CHECK_LEVEL", "0");
    a.run("monitor").expect(7, "root monitor still works");
}

#[test]
fn nul_cannot_reach_an_agent() {
    // A NUL byte cannot be carried in an environment variable or an
    // argument: the OS cuts strings there, so no configuration can smuggle
    // one in. Escaped forms (\0) are refused by the option parser above.
    let err = Command::new("true")
        .env("OCF_RESKEY_options", "ro\0rw")
        .status();
    assert!(err.is_err(), "the OS passed a NUL byte");
}

#[test]
fn parameters_that_do_not_parse_cannot_hide_a_started_resource() {
    needs_root!("parameters_that_do_not_parse_cannot_hide_a_started_resource");
    let w = world();
    let dir = w.scratch.join("mnt/a");
    std::fs::create_dir_all(&dir).unwrap();
    let a = agent(&w);
    a.run("start").expect(0, "start");
    // The configuration broke while the filesystem is mounted: neither a
    // stop nor a probe may call it stopped.
    let broken = a.clone().unset("device");
    check(
        &w,
        &broken,
        "stop",
        6,
        "'device' is required",
        "broken, started",
    );
    check(
        &w,
        &broken.clone().unset_env("OCF_RESKEY_CRM_meta_interval"),
        "monitor",
        6,
        "'device' is required",
        "broken, started",
    );
    assert!(w.sb.is_mounted(&dir), "the filesystem must stay mounted");
    a.run("stop")
        .expect(0, "stop with the parameters it started with");
    assert!(!w.sb.is_mounted(&dir));
    // Nothing of it runs here any more.
    never_started(&broken, "broken, stopped", &|| snapshot(&w));
}
