//! Virtual NFS servers (ocf:handoff:nfs-server) against a real nfsd, in a
//! qemu VM: three export groups, each with its own server, on two nodes;
//! one fails over while the client keeps locking on the other two (see
//! handoff_tests::guest::vservers); then the same move with one server per
//! node, for comparison. The console log and the measurements
//! land in target/vm-logs/vserver-*.

use std::time::Duration;

use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn virtual_servers_in_a_vm() {
    needs_root!("virtual_servers_in_a_vm");
    if !vm::prerequisites("virtual_servers_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("vserver-vm");
    let run = vm::run(
        scratch.path(),
        "handoff.scenarios=vservers,nodewide",
        Duration::from_secs(1200),
    );
    vm::report("vserver", &run);
    vm::assert_passed("vserver", &run);
    for last in [
        "vservers: after VA's grace",
        "nodewide: NC's client is blocked",
    ] {
        assert!(
            run.checks.iter().any(|c| c.name.starts_with(last)),
            "a scenario did not run to its end ({last})"
        );
    }
}
