//! The NFS scenarios against a real nfsd, in a qemu VM (this machine's
//! kernel has no nfsd): Debian's 6.12 kernel, two cluster nodes and a client
//! as namespaces, two exports on shared disks (see handoff_tests::guest).
//! The console log and the measurements land in target/vm-logs/.

use std::time::Duration;

use handoff_tests::util::{have, workspace_root};
use handoff_tests::{needs_root, vm, Scratch};

fn report(name: &str, run: &vm::Run) {
    let dir = workspace_root().join("target/vm-logs");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{name}-console.log")), &run.log);
    let metrics: serde_json::Map<String, serde_json::Value> = run
        .metrics
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                serde_json::json!({ "value": m.value, "unit": m.unit }),
            )
        })
        .collect();
    let _ = std::fs::write(
        dir.join(format!("{name}-metrics.json")),
        serde_json::to_string_pretty(&metrics).unwrap_or_default(),
    );
    eprintln!(
        "\n{name} ({}): {} checks, {} failed",
        run.accel,
        run.checks.len(),
        run.checks.iter().filter(|c| !c.ok).count()
    );
    for m in &run.metrics {
        eprintln!("  {:<40} {:>12.2} {}", m.name, m.value, m.unit);
    }
}

fn vm_prerequisites(test: &str) -> bool {
    [
        "qemu-system-x86_64",
        "busybox",
        "cpio",
        "xz",
        "dpkg-deb",
        "apt-get",
        "modprobe",
        "depmod",
        "rpc.nfsd",
        "sm-notify",
    ]
    .iter()
    .all(|p| have(p, test))
}

#[test]
fn nfs_export_failover_in_a_vm() {
    needs_root!("nfs_export_failover_in_a_vm");
    if !vm_prerequisites("nfs_export_failover_in_a_vm") {
        return;
    }
    let scratch = Scratch::new("nfs-vm");
    let run = vm::run(
        scratch.path(),
        "handoff.scenarios=failover,refused,dropbench,classic",
        Duration::from_secs(1800),
    );
    report("nfs", &run);
    assert!(
        run.finished,
        "the VM did not reach its end; see target/vm-logs/nfs-console.log"
    );
    let failed: Vec<String> = run
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
    // Every scenario reported its checks (a crash mid-way prints fewer).
    for prefix in ["setup:", "failover:", "refused:", "dropbench:", "classic:"] {
        assert!(
            run.checks.iter().any(|c| c.name.starts_with(prefix)),
            "no {prefix} checks ran"
        );
    }
}
