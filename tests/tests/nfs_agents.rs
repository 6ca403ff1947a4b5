//! ocf:handoff:export and ocf:handoff:nlm-locks on this machine, whose
//! kernel has no nfsd: exportfs works on mountd's table alone, so export
//! runs for real in a sandbox with its own /var/lib/nfs; nlm-locks is
//! checked for its refusals here and for real in the VM (nfs_vm.rs).

use std::path::Path;
use std::process::Command;

use handoff_tests::util::{agent_bin, have, run_ok, stdout_ok};
use handoff_tests::{needs_root, AgentCmd, LoopDev, Sandbox, Scratch};

struct World {
    sb: Sandbox,
    _dev: LoopDev,
    scratch: Scratch,
}

/// A sandbox with a private /var/lib/nfs and an ext4 filesystem mounted at
/// <scratch>/srv/a.
fn world() -> World {
    let scratch = Scratch::new("nfs-agents");
    let dev = LoopDev::ext4(scratch.path(), "disk");
    let sb = Sandbox::new();
    run_ok(
        sb.command("mount")
            .args(["-t", "tmpfs", "nfsstate", "/var/lib/nfs"]),
    );
    for f in ["/var/lib/nfs/etab", "/var/lib/nfs/rmtab"] {
        run_ok(sb.command("touch").arg(f));
    }
    let dir = scratch.join("srv/a");
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(sb.command("mount").arg(&dev.path).arg(&dir));
    World {
        sb,
        _dev: dev,
        scratch,
    }
}

fn export(w: &World) -> AgentCmd {
    AgentCmd::new(&w.sb, "export")
        .param("clientspec", "192.0.2.0/24 198.51.100.7")
        .param("directory", w.scratch.join("srv/a").display())
        .param("fsid", "7")
        .env("HA_RSCTMP", w.scratch.join("rsctmp").display())
}

fn etab(w: &World) -> String {
    stdout_ok(w.sb.command("cat").arg("/var/lib/nfs/etab"))
}

#[test]
fn export_lifecycle_on_mountds_table() {
    needs_root!("export_lifecycle_on_mountds_table");
    if !have("exportfs", "export_lifecycle_on_mountds_table") {
        return;
    }
    let w = world();
    let dir = w.scratch.join("srv/a").display().to_string();
    let e = export(&w);
    e.run("monitor").expect(7, "monitor before start");
    e.run("validate-all").expect(0, "validate-all");
    e.run("start").expect(0, "start");
    let t = etab(&w);
    for client in ["192.0.2.0/24", "198.51.100.7"] {
        assert!(
            t.lines()
                .any(|l| l.starts_with(&format!("{dir}\t{client}(")) && l.contains("fsid=7")),
            "{t}"
        );
    }
    e.run("start").expect(0, "start when started");
    let out = e.run_args(&["--json", "monitor"]);
    out.expect(0, "monitor");
    assert!(out.stdout.contains("\"fsid\":\"7\""), "{}", out.stdout);

    // One client removed behind its back: an error, not "stopped".
    run_ok(
        w.sb.command("exportfs")
            .arg("-u")
            .arg(format!("198.51.100.7:{dir}")),
    );
    let out = e.run("monitor");
    out.expect(1, "monitor of a partial export");
    assert!(
        out.reason().unwrap_or("").contains("not to 198.51.100.7"),
        "{out:?}"
    );
    e.run("start").expect(0, "start repairs it");

    // The client list travels on the filesystem: saved at stop, merged
    // back at start.
    let rmtab = Path::new(&format!("/proc/{}/root/var/lib/nfs/rmtab", w.sb.pid())).to_owned();
    let line = format!("192.0.2.50:{dir}:0x00000001\n");
    std::fs::write(
        &rmtab,
        format!("{line}198.51.100.9:/elsewhere:0x00000001\n"),
    )
    .unwrap();
    e.run("stop").expect(0, "stop");
    assert!(!etab(&w).contains(&dir), "still exported: {}", etab(&w));
    let backup = std::fs::read_to_string(format!("/proc/{}/root{dir}/.rmtab", w.sb.pid())).unwrap();
    assert_eq!(backup, line, "only this export's clients are kept");
    std::fs::write(&rmtab, "").unwrap();
    e.run("start").expect(0, "start");
    assert_eq!(
        std::fs::read_to_string(&rmtab).unwrap(),
        line,
        "rmtab not restored"
    );
    e.run("stop").expect(0, "stop");
    e.run("stop").expect(0, "stop when stopped");
    e.run("monitor").expect(7, "monitor after stop");
}

#[test]
fn export_refusals_change_nothing() {
    needs_root!("export_refusals_change_nothing");
    if !have("exportfs", "export_refusals_change_nothing") {
        return;
    }
    let w = world();
    let dir = w.scratch.join("srv/a").display().to_string();
    let plain = w.scratch.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let file = w.scratch.join("a-file");
    std::fs::write(&file, "x").unwrap();
    // (name, parameters changed ("-" unsets), action, exit code, reason)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, i32, &'a str);
    let cases: &[Case] = &[
        (
            "fsid unset",
            &[("fsid", "-")],
            "validate-all",
            6,
            "'fsid' is required",
        ),
        (
            "fsid zero",
            &[("fsid", "0")],
            "validate-all",
            6,
            "expected a number from 1",
        ),
        (
            "fsid in options",
            &[("options", "rw,fsid=3")],
            "validate-all",
            6,
            "set the filesystem ID with the fsid parameter",
        ),
        (
            "options with a space",
            &[("options", "rw sync")],
            "validate-all",
            6,
            "contains ' '",
        ),
        (
            "client with shell",
            &[("clientspec", "192.0.2.0/24;reboot")],
            "validate-all",
            6,
            "is not a host, network",
        ),
        (
            "client as an option",
            &[("clientspec", "-o")],
            "validate-all",
            6,
            "is not a host, network",
        ),
        (
            "no client",
            &[("clientspec", " ")],
            "validate-all",
            6,
            "give at least one client",
        ),
        (
            "directory relative",
            &[("directory", "srv/a")],
            "validate-all",
            6,
            "absolute path",
        ),
        (
            "directory is a file",
            &[("directory", "{file}")],
            "validate-all",
            2,
            "is not a directory",
        ),
        (
            "rmtab_backup outside",
            &[("rmtab_backup", "../x")],
            "validate-all",
            6,
            "a file name in the exported directory",
        ),
        (
            "not a mount point",
            &[("directory", "{plain}")],
            "start",
            1,
            "is not a mount point",
        ),
        (
            "directory missing",
            &[("directory", "{scratch}/none")],
            "start",
            1,
            "does not exist on this node",
        ),
    ];
    let snapshot = || {
        format!(
            "{}|{}",
            etab(&w),
            stdout_ok(Command::new("find").arg(w.scratch.path()))
        )
    };
    for (name, set, action, code, reason) in cases {
        let mut e = export(&w);
        for (k, v) in *set {
            let v = v
                .replace("{file}", &file.display().to_string())
                .replace("{plain}", &plain.display().to_string())
                .replace("{scratch}", &w.scratch.path().display().to_string());
            e = if v == "-" { e.unset(k) } else { e.param(k, v) };
        }
        let before = snapshot();
        let out = e.run(action);
        assert_eq!(out.code, *code, "{name}: {}", out.stderr);
        assert!(
            out.reason().unwrap_or("").contains(reason),
            "{name}: {:?}",
            out.reason()
        );
        assert_eq!(snapshot(), before, "{name} changed the system");
    }
    // Two fsids for one directory, and one fsid for two directories.
    export(&w).run("start").expect(0, "start");
    let before = snapshot();
    let other = export(&w)
        .param("clientspec", "203.0.113.0/24")
        .param("fsid", "8")
        .run("start");
    other.expect(1, "a second fsid for the directory");
    let r = other.reason().unwrap_or("").to_owned();
    assert!(
        r.contains("is already exported to") && r.contains("with fsid=7"),
        "{other:?}"
    );
    let twice = export(&w)
        .param("directory", plain.display())
        .param("allow_non_mountpoint", "true")
        .run("start");
    twice.expect(1, "one fsid on two directories");
    assert!(
        twice
            .reason()
            .unwrap_or("")
            .contains(&format!("already used by the export of {dir}")),
        "{twice:?}"
    );
    assert_eq!(snapshot(), before);
    export(&w).run("stop").expect(0, "stop");
}

#[test]
fn ocf_tester_passes_on_export() {
    needs_root!("ocf_tester_passes_on_export");
    if !have("exportfs", "ocf_tester_passes_on_export")
        || !have("ocf-tester", "ocf_tester_passes_on_export")
    {
        return;
    }
    let w = world();
    let out =
        w.sb.command("ocf-tester")
            .args([
                "-n",
                "ex1",
                "-o",
                "clientspec=192.0.2.0/24",
                "-o",
                "fsid=11",
            ])
            .args([
                "-o",
                &format!("directory={}", w.scratch.join("srv/a").display()),
            ])
            .arg(agent_bin("export"))
            .env("HA_RSCTMP", w.scratch.join("rsctmp"))
            .output()
            .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
}

#[test]
fn nlm_locks_refusals() {
    needs_root!("nlm_locks_refusals");
    let w = world();
    let dir = w.scratch.join("srv/a").display().to_string();
    let base = AgentCmd::new(&w.sb, "nlm-locks")
        .param("directory", &dir)
        .param("ip", "192.0.2.100")
        .env("HA_RSCTMP", w.scratch.join("rsctmp").display());
    if have("sm-notify", "nlm_locks_refusals (validate-all)") {
        base.run("validate-all").expect(0, "good configuration");
    }
    let cases: &[(&str, &str, i32, &str)] = &[
        ("ip", "nfs-a", 6, "not an IP address"),
        ("notify_name", "a;b", 6, "no spaces or shell characters"),
        ("backend", "magic", 6, "expected one of: auto, procfs, kmod"),
        ("backend", "kmod", 5, "needs /dev/folocks"),
        ("grace", "always", 6, "expected one of: existing, restart"),
        ("kmod_request", "path", 6, "expected one of: fd, devno"),
        ("fsid", "0", 6, "a number from 1"),
        ("statd_dir", "/var/lib/nfs", 6, "relative to it"),
        ("directory", "relative", 6, "absolute path"),
    ];
    for (k, v, code, reason) in cases {
        let out = base.clone().param(k, v).run("validate-all");
        assert_eq!(out.code, *code, "{k}={v}: {}", out.stderr);
        assert!(
            out.reason().unwrap_or("").contains(reason),
            "{k}={v}: {:?}",
            out.reason()
        );
    }
    // No instance recorded: stopped. Stop of a stopped instance succeeds.
    base.run("monitor").expect(7, "monitor before start");
    base.run("stop").expect(0, "stop when never started");
    // Not the mount point of a filesystem: start refuses.
    let out = base
        .clone()
        .param("directory", w.scratch.path().display())
        .run("start");
    out.expect(1, "start on a directory that is not a mount point");
    assert!(
        out.reason().unwrap_or("").contains("is not a mount point"),
        "{out:?}"
    );
    // An fsid the export table lists for another filesystem: refused as a
    // configuration error before anything is recorded.
    let table = w.scratch.join("etab");
    std::fs::write(&table, "/elsewhere\t192.0.2.0/24(rw,sync,fsid=9)\n").unwrap();
    run_ok(w.sb.command("cp").arg(&table).arg("/var/lib/nfs/etab"));
    let out = base.clone().param("fsid", "9").run("start");
    out.expect(6, "start with an fsid exported from elsewhere");
    assert!(
        out.reason()
            .unwrap_or("")
            .contains("fsid 9 is exported from /elsewhere"),
        "{out:?}"
    );
    base.run("monitor")
        .expect(7, "nothing recorded by the refused start");
}

/// btrfs gives files another device number through stat than the one
/// /proc/locks and mountinfo show; the remaining-lock check must use the
/// latter, or a lock on the filesystem would go unseen and it would be
/// unmounted under it. Here nfsd is absent, so stop only checks for locks.
#[test]
fn nlm_locks_sees_locks_on_btrfs() {
    needs_root!("nlm_locks_sees_locks_on_btrfs");
    if !have("mkfs.btrfs", "nlm_locks_sees_locks_on_btrfs")
        || !have("flock", "nlm_locks_sees_locks_on_btrfs")
    {
        return;
    }
    let scratch = Scratch::new("nlm-btrfs");
    let dev = LoopDev::new(scratch.path(), "disk", 256, Some("btrfs"), None);
    let sb = Sandbox::new();
    let dir = scratch.join("srv/b");
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(sb.command("mount").arg(&dev.path).arg(&dir));
    let file = dir.join("held");
    run_ok(sb.command("touch").arg(&file));
    let mut holder = sb
        .command("flock")
        // -o: the lock and its descriptor stay in flock itself, which the
        // kill below ends; sleep holds nothing on the filesystem.
        .arg("-o")
        .arg(&file)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    // Wait for the lock to show.
    let dev_text = std::fs::read_to_string(format!("/proc/{}/mountinfo", sb.pid()))
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .and_then(|l| l.split(' ').nth(2).map(str::to_owned))
        .expect("the btrfs mount in the sandbox");
    for _ in 0..100 {
        if std::fs::read_to_string("/proc/locks")
            .unwrap()
            .contains("FLOCK")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = AgentCmd::new(&sb, "nlm-locks")
        .param("directory", dir.display())
        .param("ip", "192.0.2.100")
        .env("HA_RSCTMP", scratch.join("rsctmp").display())
        .run("stop");
    let _ = holder.kill();
    let _ = holder.wait();
    out.expect(1, "stop with a local lock on the btrfs filesystem");
    assert!(
        out.reason().unwrap_or("").contains("remain")
            && out.reason().unwrap_or("").contains("1 by local processes"),
        "mount device {dev_text}: {out:?}"
    );
    run_ok(sb.command("umount").arg(&dir));
}
