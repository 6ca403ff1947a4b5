//! `classic`: the classic recipe, a restart of the node's nfsd.

use super::*;

pub(crate) fn classic(w: &mut World) {
    let b_dev = rdev(B.dev);
    let before = locks_on(b_dev);
    // The classic recipe: restart the node's NFS server, default grace
    // (settable only while nfsd is stopped).
    let t = Instant::now();
    w.node1.ok(&["rpc.nfsd", "0"]);
    w.node1.set_grace(0);
    w.node1.ok(&["rpc.nfsd", "8"]);
    metric(
        "classic_restart_ms",
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    let after = locks_on(b_dev);
    if cmdline("handoff.kernel").as_deref() == Some("6.1") {
        // Both nodes are namespaces of one kernel here, and node2's nfsd
        // keeps lockd's thread up: 6.1 then frees no lock of a namespace
        // whose nfsd stopped (6.12 does). A node of its own would lose
        // them with lockd's thread; B's clients wait out the grace either
        // way, which the probe below measures.
        note(format!(
            "classic: on 6.1 in one kernel the restart kept B's locks: {before} -> {after}"
        ));
    } else {
        check(
            "classic: the restart dropped B's lock too",
            after < before,
            format!("{before} -> {after}"),
        );
    }
    let probe = w.client.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            "try",
            &format!("{}/classic-probe", B.mnt),
        ],
        Duration::from_secs(300),
    );
    let blocked = probe.ms();
    metric("classic_new_lock_on_b_blocked_ms", blocked, "ms");
    check(
        "classic: a new lock on B waits for the grace period",
        probe.code == 0 && blocked > 30_000.0,
        format!("{} after {blocked:.0} ms", probe.stdout.trim()),
    );
}
