//! `kmodload`, `kmod`, `kmodunload`: the kernel module's requests.

use super::*;

/// Where the test puts the module in the guest.
const KO: &str = "/handoff/handoff_folocks.ko";

/// New kernel log lines since the last call (from /dev/kmsg).
pub(crate) fn kmsg() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // The last record's sequence number returned: records are told apart by
    // it, not by their count, since the ring drops its oldest ones when a
    // benchmark fills it.
    static LAST: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let mut lines = Vec::new();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    {
        // One record per read, EPIPE where records were overwritten under
        // the reader (the next read goes on), EAGAIN at the end.
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            };
            let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
            let Some((prefix, msg)) = rec.split_once(';') else {
                continue;
            };
            let Some(seq) = prefix.split(',').nth(1).and_then(|s| s.parse::<u64>().ok()) else {
                continue;
            };
            if last.is_none_or(|l| seq > l) {
                *last = Some(seq);
                lines.push(msg.trim_end().to_owned());
            }
        }
    }
    lines.join("\n")
}

pub(crate) fn load() {
    let _ = kmsg();
    let f = std::fs::File::open(KO).expect("the module is in the guest");
    let loaded = nix::kmod::finit_module(
        &f,
        &std::ffi::CString::default(),
        nix::kmod::ModuleInitFlags::empty(),
    );
    check(
        "kmodload: handoff_folocks loads",
        loaded.is_ok(),
        format!("{loaded:?}"),
    );
    let dev = wait_for(Duration::from_secs(5), || {
        std::path::Path::new("/dev/folocks").exists()
    });
    let mode = nix::sys::stat::stat("/dev/folocks").map(|s| s.st_mode & 0o777);
    check(
        "kmodload: /dev/folocks appears, root only (0600)",
        dev.is_some() && mode == Ok(0o600),
        format!("{mode:?}"),
    );
    let log = kmsg();
    check(
        "kmodload: the module says it is ready, with its request version",
        log.contains("handoff_folocks: ready: /dev/folocks, request layout v1"),
        log,
    );
    let v = sys::run(&mut sys::cmd(&[
        "/handoff/bin/handoff-vmtest",
        "--folocks",
        "version",
    ]));
    check(
        "kmodload: it speaks request version 1",
        v.stdout.trim() == "ok 1:0",
        v.stdout,
    );
}

fn folocks(h: &Host, args: &[&str]) -> String {
    let mut all = vec!["/handoff/bin/handoff-vmtest", "--folocks"];
    all.extend_from_slice(args);
    h.run(&all).stdout.trim().to_owned()
}

pub(crate) fn requests(w: &mut World) {
    // Only what this scenario makes the kernel say counts below.
    let _ = kmsg();
    // A is served by node2, B by node1 (after failover).
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    let (a, b) = (
        format!("{}:{}", a_dev.0, a_dev.1),
        format!("{}:{}", b_dev.0, b_dev.1),
    );
    let held = |w: &mut World, tag: &str| {
        let ok =
            w.hold(&format!("{}/kmod-{tag}", A.mnt)) && w.hold(&format!("{}/kmod-{tag}", B.mnt));
        (ok, locks_on(a_dev), locks_on(b_dev))
    };
    let (ok, on_a, on_b) = held(w, "refused");
    check(
        "kmod: the client holds locks on A and B",
        ok && on_a > 0 && on_b > 0,
        format!("{on_a} on A, {on_b} on B"),
    );
    let sub = format!("{}/kmod-subdir", A.dir);
    // /srv/a is mounted in node2's mount namespace only.
    std::fs::create_dir_all(format!("/proc/{}/root{sub}", w.node2.pid)).expect("subdir on A");
    let bad: &[(&str, &[&str], &str)] = &[
        (
            "a device with another filesystem type",
            &["devno", &a, "tmpfs"],
            "ENOENT",
        ),
        (
            "a filesystem type the kernel lacks",
            &["devno", &a, "nosuchfs"],
            "ENODEV",
        ),
        (
            "a device nothing is mounted from",
            &["devno", "7:250", "ext4"],
            "ENOENT",
        ),
        (
            "a directory that is not a mount root",
            &["fd", &sub],
            "ENOTDIR",
        ),
        (
            "a mount root on another device than named",
            &["fd", A.dir, &b],
            "EXDEV",
        ),
        ("a descriptor that is not open", &["badfd"], "EBADF"),
        (
            "another request version",
            &["version2", &a, "ext4"],
            "EPROTO",
        ),
        ("reserved bytes set", &["reserved", &a, "ext4"], "EINVAL"),
        (
            "an address family other than IPv4/IPv6",
            &["family"],
            "EAFNOSUPPORT",
        ),
        (
            "the unspecified address",
            &["ip", "0.0.0.0"],
            "EADDRNOTAVAIL",
        ),
        ("a multicast address", &["ip", "ff02::1"], "EADDRNOTAVAIL"),
        (
            "a request running off readable memory",
            &["short", &a, "ext4"],
            "EFAULT",
        ),
        ("an unknown ioctl", &["unknown", &a, "ext4"], "ENOTTY"),
        (
            "a caller without CAP_SYS_ADMIN",
            &["noadmin", &a, "ext4"],
            "EPERM",
        ),
    ];
    for (what, args, errno) in bad {
        let out = folocks(&w.node2, args);
        check(
            &format!("kmod: refuses {what} with {errno}, nothing dropped"),
            out == format!("err {errno}") && locks_on(a_dev) == on_a && locks_on(b_dev) == on_b,
            format!("{out}; {} on A, {} on B", locks_on(a_dev), locks_on(b_dev)),
        );
    }
    let log = kmsg();
    check(
        "kmod: refused requests leave no trace in the kernel log",
        !log.contains("released"),
        log,
    );

    // Each drop form takes exactly A's locks.
    let forms: [(&str, Vec<&str>, String); 3] = [
        (
            "devno",
            vec!["devno", &a, "ext4", A.fsid],
            format!("fsid {}: released the NLM locks on vda ({a})", A.fsid),
        ),
        (
            "fd",
            vec!["fd", A.dir, &a, A.fsid],
            format!("fsid {}: released the NLM locks on vda ({a})", A.fsid),
        ),
        (
            "ip",
            vec!["ip", A.vip, "-", A.fsid],
            format!(
                "fsid {}: released the NLM locks taken through {}",
                A.fsid, A.vip
            ),
        ),
    ];
    for (form, args, logged) in forms {
        let (ok, on_a, on_b) = held(w, form);
        let out = folocks(&w.node2, &args);
        let want = if form == "ip" {
            "ok 0:0".to_owned()
        } else {
            format!("ok {a}")
        };
        check(
            &format!("kmod: drop by {form} takes A's {on_a} lock(s) and none of B's {on_b}"),
            ok && out == want && locks_on(a_dev) == 0 && locks_on(b_dev) == on_b,
            format!("{out}; {} on A, {} on B", locks_on(a_dev), locks_on(b_dev)),
        );
        let log = kmsg();
        check(
            &format!("kmod: drop by {form} is logged with the fsid"),
            log.contains(&logged),
            log,
        );
    }

    // The agent, in the devno form the original proposal asked for.
    let (_, mut params) = nodewide_members(&A, "existing", "kmod").swap_remove(1);
    params.push(("kmod_request", "devno".into()));
    let (ok, on_a, on_b) = held(w, "agent");
    let d = run_member(&w.node2, &A, "nlm-locks", "stop", &params);
    check(
        "kmod: nlm-locks backend=kmod kmod_request=devno drops A's locks, not B's, and says kmod acted",
        ok && on_a > 0 && d.code == 0 && d.stderr.contains("through kmod") && locks_on(a_dev) == 0 && locks_on(b_dev) == on_b,
        format!("{}; {}", d.reason(), d.stderr.lines().filter(|l| l.contains("kmod")).collect::<Vec<_>>().join(" ")),
    );
    let log = kmsg();
    check(
        "kmod: the agent's request carries the fsid",
        log.contains(&format!("fsid {}: released", A.fsid)),
        log,
    );
    let s = run_member(&w.node2, &A, "nlm-locks", "start", &params);
    check(
        "kmod: nlm-locks starts again with backend=kmod",
        s.code == 0,
        s.reason(),
    );
}

pub(crate) fn unload() {
    let _ = kmsg();
    let r = nix::kmod::delete_module(c"handoff_folocks", nix::kmod::DeleteModuleFlags::O_NONBLOCK);
    check(
        "kmodunload: handoff_folocks unloads",
        r.is_ok(),
        format!("{r:?}"),
    );
    let gone = wait_for(Duration::from_secs(5), || {
        !std::path::Path::new("/dev/folocks").exists()
    });
    check("kmodunload: /dev/folocks is gone", gone.is_some(), "");
    let log = kmsg();
    check(
        "kmodunload: it reports its requests, none incomplete",
        log.contains("handoff_folocks: unloading after") && log.contains(" 0 incomplete"),
        &log,
    );
    check(
        "kmodunload: no warning, oops or BUG in the kernel log",
        !["WARNING", "BUG", "Oops", "refcount"]
            .iter()
            .any(|w| log.contains(w)),
        log,
    );
}
