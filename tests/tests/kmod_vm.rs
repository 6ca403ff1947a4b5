//! The handoff kernel module in a VM: ci/kernel builds (or reuses) Debian's
//! linux-source-6.12 with Rust and kmod/kernel.config and the module against
//! it; the guest boots that kernel, loads the module, checks every request
//! form and errno against real NLM locks, runs the failover and the
//! lock-drop benchmark through the kmod backend, and unloads it. Skipped,
//! loudly, where the kernel toolchain cannot be installed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use handoff_tests::util::workspace_root;
use handoff_tests::{needs_root, vm, Scratch};

/// Run ci/kernel with `args`: the last line it prints, or None when it
/// says the toolchain is unavailable (exit 3).
fn ci_kernel(args: &[&str]) -> Option<PathBuf> {
    let out = Command::new(workspace_root().join("ci/kernel"))
        .args(args)
        .output()
        .expect("ci/kernel runs");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        handoff_tests::util::skip(
            "kmod_in_a_vm",
            err.lines().last().unwrap_or("ci/kernel cannot build"),
        );
        return None;
    }
    let tail: Vec<&str> = err.lines().rev().take(40).collect();
    assert!(
        out.status.success(),
        "ci/kernel {args:?} failed:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().last().map(PathBuf::from)
}

#[test]
fn kmod_in_a_vm() {
    needs_root!("kmod_in_a_vm");
    if !vm::prerequisites("kmod_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("kmod-vm");
    let Some(tree) = ci_kernel(&[]) else { return };
    let module_dir = scratch.path().join("kmod");
    let Some(ko) = ci_kernel(&["module", &module_dir.to_string_lossy()]) else {
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
