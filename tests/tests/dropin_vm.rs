//! handoff's export beside the ClusterLabs exportfs, on a real nfsd: the
//! guest runs on this machine's root filesystem (read-only, under an
//! overlay), where Debian's resource-agents and its shell are, with
//! Debian's kernel; the `dropin` scenario compares them case by case (see
//! handoff_tests::guest::dropin). The host suite `dropin` does the same for
//! fs and vip, which need no nfsd.

use std::time::Duration;

use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn export_answers_as_exportfs_does_or_differs_on_record() {
    needs_root!("export_answers_as_exportfs_does_or_differs_on_record");
    if !vm::prerequisites("export_answers_as_exportfs_does_or_differs_on_record") {
        return;
    }
    let scratch = Scratch::new("dropin-vm");
    let run = vm::run_on_host_root(
        scratch.path(),
        "handoff.scenarios=dropin",
        Duration::from_secs(1200),
        &[],
    );
    vm::report("dropin", &run);
    vm::assert_passed("dropin", &run);
    assert!(
        run.checks
            .iter()
            .filter(|c| c.name.starts_with("dropin:"))
            .count()
            >= 10,
        "the dropin scenario did not run its cases"
    );
}
