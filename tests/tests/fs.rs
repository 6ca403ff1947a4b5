//! ocf:handoff:fs on real loop devices (ext4, xfs, btrfs) in private mount
//! namespaces: every action and depth, idempotency, busy unmounts, a
//! SIGKILL in the middle of start, and changes made behind its back.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use handoff_tests::util::{have, run_ok, stdout_ok};
use handoff_tests::{needs_root, wait_until, AgentCmd, LoopDev, Sandbox, Scratch};

/// Fields drop in order: the sandbox (and its mounts) before the device,
/// the device before the scratch directory.
struct Fixture {
    fs: AgentCmd,
    sb: Sandbox,
    dev: LoopDev,
    dir: PathBuf,
    scratch: Scratch,
}

fn fixture(fstype: &str) -> Fixture {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let scratch = Scratch::new(&format!("fs-{fstype}"));
    // Labels are unique per fixture: tests run in parallel, and a label on
    // two devices is (rightly) refused. xfs allows 12 characters.
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let label = format!("t{}_{n}", std::process::id() % 100000);
    let (mb, mkfs) = match fstype {
        "xfs" => (320, "xfs"),
        "btrfs" => (128, "btrfs"),
        other => (64, other),
    };
    let dev = LoopDev::new(scratch.path(), "disk", mb, Some(mkfs), Some(&label));
    let sb = Sandbox::new();
    let dir = scratch.join("mnt/a");
    let fs = AgentCmd::new(&sb, "fs")
        .param("device", dev.dev())
        .param("directory", dir.display())
        .env("HA_RSCTMP", scratch.join("rsctmp").display())
        .env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000");
    Fixture {
        fs,
        sb,
        dev,
        dir,
        scratch,
    }
}

fn lifecycle(fstype: &str) {
    let f = fixture(fstype);
    f.fs.run("monitor").expect(7, "monitor before start");
    f.fs.run("validate-all").expect(0, "validate-all");
    f.fs.run("start").expect(0, "start");
    assert!(f.sb.is_mounted(&f.dir), "not mounted after start");
    assert!(
        f.sb.mountinfo()
            .lines()
            .any(|l| l.contains(&format!(" {} ", f.dir.display()))
                && l.contains(&format!(" - {fstype} "))),
        "mounted with the wrong type:\n{}",
        f.sb.mountinfo()
    );
    f.fs.run("start").expect(0, "start when started");
    for depth in ["0", "10", "20"] {
        f.fs.clone()
            .env("OCF_CHECK_LEVEL", depth)
            .run("monitor")
            .expect(0, &format!("monitor depth {depth}"));
    }
    let status = f.dir.join(".handoff_status");
    let listing = stdout_ok(f.sb.command("ls").arg(&status));
    assert!(
        listing.contains("test-fs_"),
        "depth 20 left no status file: {listing:?}"
    );
    // The status file holds what the write test wrote.
    let content = stdout_ok(f.sb.command("cat").arg(status.join(listing.trim())));
    assert!(content.starts_with("test-fs "), "{content:?}");
    f.fs.run("stop").expect(0, "stop");
    assert!(!f.sb.is_mounted(&f.dir), "still mounted after stop");
    f.fs.run("stop").expect(0, "stop when stopped");
    f.fs.run("monitor").expect(7, "monitor after stop");
    // The status file was removed at stop, on the filesystem itself.
    run_ok(f.sb.command("mount").arg(&f.dev.path).arg(&f.dir));
    let left = stdout_ok(f.sb.command("ls").arg("-A").arg(&status));
    assert_eq!(left.trim(), "", "status file left behind");
    run_ok(f.sb.command("umount").arg(&f.dir));
}

#[test]
fn lifecycle_ext4() {
    needs_root!("lifecycle_ext4");
    lifecycle("ext4");
}

#[test]
fn lifecycle_xfs() {
    needs_root!("lifecycle_xfs");
    lifecycle("xfs");
}

#[test]
fn lifecycle_btrfs() {
    needs_root!("lifecycle_btrfs");
    if !have("mkfs.btrfs", "lifecycle_btrfs") {
        return;
    }
    lifecycle("btrfs");
}

#[test]
fn fstype_uuid_and_label_read_like_blkid() {
    needs_root!("fstype_uuid_and_label_read_like_blkid");
    for fstype in ["ext4", "xfs", "btrfs"] {
        if fstype == "btrfs" && !have("mkfs.btrfs", "btrfs part") {
            continue;
        }
        let f = fixture(fstype);
        let uuid = f.dev.blkid("UUID");
        let label = f.dev.blkid("LABEL");
        assert!(!uuid.is_empty());
        for spec in [
            format!("UUID={uuid}"),
            format!("UUID={}", uuid.to_uppercase()),
            format!("LABEL={label}"),
        ] {
            if spec == "LABEL=" {
                continue;
            }
            let a = f.fs.clone().param("device", &spec);
            a.run("validate-all").expect(0, &format!("validate {spec}"));
            a.run("start").expect(0, &format!("start {spec}"));
            let json = a.run_args(&["--json", "monitor"]);
            json.expect(0, &format!("monitor {spec}"));
            let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
            assert_eq!(doc["facts"]["fstype"], fstype, "{spec}");
            assert_eq!(doc["facts"]["device"], f.dev.dev(), "{spec}");
            a.run("stop").expect(0, &format!("stop {spec}"));
            assert!(!f.sb.is_mounted(&f.dir));
        }
    }
}

#[test]
fn monitor_sees_unmount_behind_its_back() {
    needs_root!("monitor_sees_unmount_behind_its_back");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    run_ok(f.sb.command("umount").arg(&f.dir));
    let out = f.fs.run("monitor");
    out.expect(7, "monitor after a foreign umount");
    assert!(
        out.reason().unwrap_or("").contains("is not mounted at"),
        "{out:?}"
    );
    // Mounted somewhere else instead: an error, because the device is
    // still in use on this node.
    let other = f.scratch.join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    run_ok(f.sb.command("mount").arg(&f.dev.path).arg(&other));
    let out = f.fs.run("monitor");
    out.expect(1, "monitor of a device mounted elsewhere");
    assert!(out.reason().unwrap_or("").contains("elsewhere"), "{out:?}");
    // Stop releases it: a stopped resource must not leave the disk mounted.
    f.fs.run("stop").expect(0, "stop");
    assert!(!f.sb.is_mounted(&other));
}

/// Start a process inside the sandbox; returns it.
fn user(f: &Fixture, args: &[&str], cwd: Option<&PathBuf>) -> std::process::Child {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &f.sb.pid().to_string(), "-m", "--"]);
    // nsenter --wd opens the directory before entering the namespace, so
    // change directory inside it instead.
    if let Some(d) = cwd {
        cmd.arg("env").arg(format!("--chdir={}", d.display()));
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("spawn user")
}

fn busy_stop(f: &Fixture, mut holder: std::process::Child, how: &str) {
    // The holder really keeps the filesystem busy.
    std::thread::sleep(Duration::from_millis(300));
    let busy = f.sb.command("umount").arg(&f.dir).output().unwrap();
    assert!(
        !busy.status.success(),
        "{how}: umount succeeded although busy"
    );
    // force_unmount=false: stop fails, names the process, leaves it mounted.
    let out =
        f.fs.clone()
            .param("force_unmount", "false")
            .env("OCF_RESKEY_CRM_meta_timeout", "3000")
            .run("stop");
    out.expect(1, &format!("{how}: stop with force_unmount=false"));
    let reason = out.reason().unwrap_or("").to_owned();
    assert!(
        reason.contains(&holder.id().to_string()) || reason.contains("busy"),
        "{how}: {reason}"
    );
    assert!(
        f.sb.is_mounted(&f.dir),
        "{how}: unmounted although stop failed"
    );
    assert!(
        holder.try_wait().unwrap().is_none(),
        "{how}: holder killed with force_unmount=false"
    );
    // Default (true): the holder is signalled and stop succeeds.
    f.fs.clone()
        .param("signal_delay", "1s")
        .run("stop")
        .expect(0, &format!("{how}: stop"));
    assert!(!f.sb.is_mounted(&f.dir), "{how}: still mounted");
    let status = holder.wait().unwrap();
    assert!(!status.success(), "{how}: holder was not signalled");
}

#[test]
fn stop_kills_a_process_holding_a_file_open() {
    needs_root!("stop_kills_a_process_holding_a_file_open");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    run_ok(f.sb.command("touch").arg(f.dir.join("held")));
    let file = f.dir.join("held").display().to_string();
    let holder = user(&f, &["tail", "-f", &file], None);
    busy_stop(&f, holder, "open file");
}

#[test]
fn stop_kills_a_process_whose_cwd_is_inside() {
    needs_root!("stop_kills_a_process_whose_cwd_is_inside");
    let f = fixture("xfs");
    f.fs.run("start").expect(0, "start");
    let holder = user(&f, &["sleep", "600"], Some(&f.dir));
    busy_stop(&f, holder, "cwd");
}

#[test]
fn stop_kills_a_program_running_from_the_filesystem() {
    needs_root!("stop_kills_a_program_running_from_the_filesystem");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    let exe = f.dir.join("sleeper");
    run_ok(f.sb.command("cp").arg("/bin/sleep").arg(&exe));
    let holder = user(&f, &[&exe.display().to_string(), "600"], None);
    busy_stop(&f, holder, "exe and memory map");
}

#[test]
fn safe_mode_finds_users_by_name_only() {
    needs_root!("safe_mode_finds_users_by_name_only");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    let mut holder = user(&f, &["sleep", "600"], Some(&f.dir));
    std::thread::sleep(Duration::from_millis(300));
    f.fs.clone()
        .param("force_unmount", "safe")
        .param("signal_delay", "1s")
        .run("stop")
        .expect(0, "stop safe");
    assert!(!f.sb.is_mounted(&f.dir));
    assert!(!holder.wait().unwrap().success());
}

#[test]
fn stop_that_cannot_unmount_fails_and_never_detaches() {
    needs_root!("stop_that_cannot_unmount_fails_and_never_detaches");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    // force_unmount=false and a short timeout: stop must give up and say so.
    let mut holder = user(&f, &["sleep", "600"], Some(&f.dir));
    std::thread::sleep(Duration::from_millis(300));
    let out =
        f.fs.clone()
            .param("force_unmount", "false")
            .env("OCF_RESKEY_CRM_meta_timeout", "2000")
            .run("stop");
    out.expect(1, "stop of a busy filesystem");
    assert!(
        f.sb.is_mounted(&f.dir),
        "a failed stop must leave the mount as it was (no lazy unmount)"
    );
    f.fs.run("monitor")
        .expect(0, "still running after the failed stop");
    holder.kill().unwrap();
    holder.wait().unwrap();
    f.fs.run("stop").expect(0, "stop once free");
}

#[test]
fn stop_unmounts_what_is_mounted_inside() {
    needs_root!("stop_unmounts_what_is_mounted_inside");
    let f = fixture("ext4");
    f.fs.run("start").expect(0, "start");
    let inner = f.dir.join("inner");
    run_ok(f.sb.command("mkdir").arg(&inner));
    run_ok(
        f.sb.command("mount")
            .args(["-t", "tmpfs", "inner"])
            .arg(&inner),
    );
    f.fs.run("stop").expect(0, "stop with a submount");
    assert!(!f.sb.is_mounted(&inner) && !f.sb.is_mounted(&f.dir));
}

#[test]
fn sigkill_in_the_middle_of_start_then_stop_cleans_up() {
    needs_root!("sigkill_in_the_middle_of_start_then_stop_cleans_up");
    let f = fixture("ext4");
    // A forced fsck makes start long enough to be interrupted at many points.
    let slow = f.fs.clone().param("run_fsck", "force");
    let mut outcomes = Vec::new();
    for delay_ms in [0u64, 1, 2, 4, 8, 15, 30, 60, 120, 250] {
        let mut child = slow.spawn("start");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        outcomes.push((delay_ms, f.sb.is_mounted(&f.dir)));
        f.fs.run("stop")
            .expect(0, &format!("stop after SIGKILL at {delay_ms} ms"));
        assert!(
            !f.sb.is_mounted(&f.dir),
            "mounted after stop ({delay_ms} ms)"
        );
        f.fs.run("monitor")
            .expect(7, &format!("monitor after stop ({delay_ms} ms)"));
        // No stray fsck keeps the device: the next start works.
        assert!(
            wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
                !stdout_ok(Command::new("ps").args(["-eo", "comm"]))
                    .lines()
                    .any(|l| l.starts_with("e2fsck") || l.starts_with("fsck"))
            }),
            "fsck survived the agent"
        );
        slow.run("start")
            .expect(0, &format!("start again ({delay_ms} ms)"));
        f.fs.run("stop").expect(0, "stop");
    }
    eprintln!("mounted at the moment of SIGKILL, by delay: {outcomes:?}");
}

#[test]
fn fsck_failure_fails_start_and_mounts_nothing() {
    needs_root!("fsck_failure_fails_start_and_mounts_nothing");
    if !have("debugfs", "fsck_failure_fails_start_and_mounts_nothing") {
        return;
    }
    let f = fixture("ext4");
    // Clear the root inode: e2fsck -p cannot repair that unattended.
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "clri <2>"])
            .arg(&f.dev.path),
    );
    let out = f.fs.clone().param("run_fsck", "force").run("start");
    out.expect(1, "start on a damaged filesystem");
    assert!(out.reason().unwrap_or("").contains("fsck"), "{out:?}");
    assert!(!f.sb.is_mounted(&f.dir));
}

#[test]
fn reload_remounts_with_new_options_and_refuses_the_rest() {
    needs_root!("reload_remounts_with_new_options_and_refuses_the_rest");
    let f = fixture("ext4");
    let a = f.fs.clone().param("options", "noatime");
    a.run("start").expect(0, "start");
    assert!(f
        .sb
        .mountinfo()
        .lines()
        .any(|l| l.contains(&f.dir.display().to_string()) && l.contains("noatime")));
    let b = f.fs.clone().param("options", "ro,noatime");
    b.run("reload").expect(0, "reload with ro");
    let line =
        f.sb.mountinfo()
            .lines()
            .find(|l| l.contains(&format!(" {} ", f.dir.display())))
            .unwrap_or("")
            .to_owned();
    assert!(line.contains(" ro,"), "not remounted read-only: {line}");
    // A change that needs a restart is refused; the cluster then restarts.
    let c = b.clone().param("fstype", "ext4");
    let out = c.run("reload-agent");
    out.expect(1, "reload of fstype");
    assert!(out.reason().unwrap_or("").contains("fstype"), "{out:?}");
    b.run("stop").expect(0, "stop");
}

#[test]
fn cli_mode_with_flags_and_json() {
    needs_root!("cli_mode_with_flags_and_json");
    let f = fixture("ext4");
    let bare = AgentCmd::new(&f.sb, "fs").env("HA_RSCTMP", f.scratch.join("rsctmp").display());
    let dev = f.dev.dev();
    let dir = f.dir.display().to_string();
    let args = |action: &'static str| vec!["--device", &dev, "--directory", &dir, "--json", action];
    let out = bare.run_args(&args("monitor"));
    out.expect(7, "cli monitor");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["status"], "not running");
    bare.run_args(&["--device", &dev, "--directory", &dir, "start"])
        .expect(0, "cli start");
    let out = bare.run_args(&[
        "--device",
        &dev,
        "--directory",
        &dir,
        "--check-level",
        "20",
        "--json",
        "monitor",
    ]);
    out.expect(0, "cli monitor depth 20");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(doc["status"], "running");
    assert_eq!(doc["facts"]["depth"], "20");
    bare.run_args(&["--device", &dev, "--directory", &dir, "stop"])
        .expect(0, "cli stop");
    let help = bare.run_args(&["--help"]);
    help.expect(0, "--help");
    assert!(help.stdout.contains("--force-unmount"), "{}", help.stdout);
}
