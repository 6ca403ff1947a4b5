//! Export groups under a real two-node Pacemaker cluster, in a VM with a
//! real nfsd and NFS clients holding locks: the guest runs on the host's
//! own root filesystem (shared read-only, see guest/hostroot.rs), so the
//! cluster is the host's Pacemaker, corosync and pcs. See
//! handoff_tests::guest::cluster for the scenarios.

use std::time::Duration;

use handoff_tests::util::{cib_from_pcs, have};
use handoff_tests::{guest, needs_root, vm, Scratch};

#[test]
fn pacemaker_moves_export_groups_in_a_vm() {
    needs_root!("pacemaker_moves_export_groups_in_a_vm");
    if !vm::prerequisites("pacemaker_moves_export_groups_in_a_vm")
        || !["pacemakerd", "corosync", "pcs"]
            .iter()
            .all(|p| have(p, "pacemaker_moves_export_groups_in_a_vm"))
    {
        return;
    }
    let scratch = Scratch::new("cluster-vm");
    // The configuration, made with the README's pcs commands here; the
    // guest loads it.
    let cib = cib_from_pcs(scratch.path(), &guest::cluster::pcs_commands());
    let run = vm::run_on_host_root(
        scratch.path(),
        "handoff.scenarios=cluster",
        Duration::from_secs(1800),
        &[(cib, guest::cluster::CIB)],
    );
    vm::report("cluster", &run);
    vm::assert_passed("cluster", &run);
    assert!(
        run.checks.iter().any(|c| c.name.starts_with("cluster:")),
        "the cluster scenario did not run"
    );
}
