//! Scale, in a qemu VM with a real nfsd: 1 and 8 export groups on one
//! node (`HANDOFF_SCALE=1,8,32` for other sizes: the README's figures), each with its own virtual server and a client lock, drained to
//! another node while a group that stays keeps locking; the cost of nfsd
//! threads; and a node-wide export table growing to 32 entries, through
//! handoff's export and ClusterLabs' exportfs (see
//! handoff_tests::guest::scale). The guest runs on this machine's root
//! filesystem (read-only, under an overlay), where resource-agents is. The console log and the measurements land
//! in target/vm-logs/scale-*.

use std::time::Duration;

use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn scale_in_a_vm() {
    needs_root!("scale_in_a_vm");
    if !vm::prerequisites("scale_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("scale-vm");
    let sizes = std::env::var("HANDOFF_SCALE").unwrap_or_else(|_| "1,8".into());
    let last = sizes.rsplit(',').next().unwrap_or("8").to_owned();
    // On the host's root, for ClusterLabs' exportfs beside handoff's.
    let run = vm::run_on_host_root(
        scratch.path(),
        &format!("handoff.scenarios=scale handoff.scale={sizes}"),
        Duration::from_secs(2400),
        &[],
    );
    vm::report("scale", &run);
    vm::assert_passed("scale", &run);
    assert!(
        run.checks.iter().any(|c| c
            .name
            .starts_with(&format!("scale: the {last} group(s) stop on node2"))),
        "the scenario did not run to its end"
    );
}
