//! Scale, in a qemu VM with a real nfsd: 1 and 8 export groups on one
//! node (`HANDOFF_SCALE=1,8,32` for other sizes, as the README's figures),
//! each with its own virtual server and a client lock, drained to another
//! node while a group that stays keeps locking; the cost of nfsd threads;
//! and a node-wide export table growing to 32 entries, through handoff's
//! export and ClusterLabs' exportfs (see handoff_tests::guest::scale). The
//! guest runs on this machine's root filesystem (read-only, under an
//! overlay), where resource-agents is. The console log and the
//! measurements land in target/vm-logs/scale-*.

use std::time::Duration;

use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn scale_in_a_vm() {
    needs_root!("scale_in_a_vm");
    if !vm::prerequisites("scale_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("scale-vm");
    // The guest's own sizes (1 and 8) unless HANDOFF_SCALE names others.
    let mut args = "handoff.scenarios=scale".to_owned();
    if let Ok(sizes) = std::env::var("HANDOFF_SCALE") {
        assert!(
            sizes
                .split(',')
                .all(|n| n.parse::<usize>().is_ok_and(|n| n > 0)),
            "HANDOFF_SCALE={sizes}: give group counts separated by commas, e.g. 1,8,32"
        );
        args.push_str(&format!(" handoff.scale={sizes}"));
    }
    // On the host's root, for ClusterLabs' exportfs beside handoff's.
    let run = vm::run_on_host_root(scratch.path(), &args, Duration::from_secs(2400), &[]);
    vm::report("scale", &run);
    vm::assert_passed("scale", &run);
    // The export-table curve comes after every size.
    assert!(
        run.checks
            .iter()
            .any(|c| c.name.starts_with("scale: clusterlabs adds")),
        "the scenario did not run to its end"
    );
}
