//! The handoff kernel module in a VM: ci/kernel builds (or reuses) Debian's
//! linux-source-6.12 with Rust and kmod/kernel.config and the module against
//! it; the guest boots that kernel, loads the module, checks every request
//! form and errno against real NLM locks, runs the failover and the
//! lock-drop benchmark through the kmod backend, and unloads it. Skipped,
//! loudly, where the kernel toolchain cannot be installed.

use std::path::PathBuf;
use std::time::Duration;

use handoff_tests::util::ci_kernel;
use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn kmod_in_a_vm() {
    needs_root!("kmod_in_a_vm");
    if !vm::prerequisites("kmod_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("kmod-vm");
    // ci/kernel prints the path it made last.
    let last = |out: String| out.lines().last().map(PathBuf::from);
    let Some(tree) = ci_kernel("kmod_in_a_vm", &[]).and_then(last) else {
        return;
    };
    let module_dir = scratch.path().join("kmod");
    let Some(ko) =
        ci_kernel("kmod_in_a_vm", &["module", &module_dir.to_string_lossy()]).and_then(last)
    else {
        return;
    };
    let kernel = tree.join("arch/x86/boot/bzImage");
    let run = vm::run_with(
        scratch.path(),
        "handoff.scenarios=kmodload,failover,dropbench-procfs,dropbench-kmod,kmod,kmodunload handoff.backend=kmod",
        Duration::from_secs(1800),
        Some(&kernel),
        &[(ko, "/handoff/handoff_folocks.ko")],
    );
    vm::report("kmod", &run);
    vm::assert_passed("kmod", &run);
    for prefix in [
        "kmodload:",
        "failover:",
        "dropbench procfs:",
        "dropbench kmod:",
        "kmod:",
        "kmodunload:",
    ] {
        assert!(
            run.checks.iter().any(|c| c.name.starts_with(prefix)),
            "no {prefix} checks ran"
        );
    }
}
