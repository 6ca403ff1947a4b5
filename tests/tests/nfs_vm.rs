//! The NFS scenarios against a real nfsd, in a qemu VM (this machine's
//! kernel has no nfsd): Debian's 6.12 kernel, two cluster nodes and a client
//! as namespaces, two exports on shared disks (see handoff_tests::guest).
//! The console log and the measurements land in target/vm-logs/.

use std::time::Duration;

use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn nfs_export_failover_in_a_vm() {
    needs_root!("nfs_export_failover_in_a_vm");
    if !vm::prerequisites("nfs_export_failover_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("nfs-vm");
    let run = vm::run(
        scratch.path(),
        "handoff.scenarios=failover,refused,dropbench,classic,failback",
        Duration::from_secs(1800),
    );
    vm::report("nfs", &run);
    vm::assert_passed("nfs", &run);
    // Every scenario reported its checks (a crash mid-way prints fewer).
    for prefix in [
        "setup:",
        "failover:",
        "refused:",
        "dropbench procfs:",
        "classic:",
        "failback:",
    ] {
        assert!(
            run.checks.iter().any(|c| c.name.starts_with(prefix)),
            "no {prefix} checks ran"
        );
    }
}
