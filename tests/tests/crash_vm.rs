//! Node crashes with one kernel per node and real fencing (see
//! handoff_tests::crash): two node VMs and a client VM, sbd on a shared
//! disk with softdog, the README's pcs commands, the ClusterLabs group
//! beside handoff's; power-off, hang and split of the node with A, B and D,
//! each followed by its rejoin. Consoles, logs and measurements land in
//! target/vm-logs/crash-*.

use handoff_tests::crash::{self, Crash};
use handoff_tests::util::{cib_from_pcs, have, workspace_root};
use handoff_tests::{needs_root, vm, Scratch};

#[test]
fn node_crashes_with_real_fencing() {
    needs_root!("node_crashes_with_real_fencing");
    if !vm::prerequisites("node_crashes_with_real_fencing")
        || !["pacemakerd", "corosync", "pcs", "sbd", "fence_sbd"]
            .iter()
            .all(|p| have(p, "node_crashes_with_real_fencing"))
    {
        return;
    }
    let scratch = Scratch::new("crash-vm");
    // The configuration, made with the README's pcs commands here (as
    // cluster_vm does); the nodes load it.
    let cib = std::fs::read_to_string(cib_from_pcs(scratch.path(), &crash::pcs_commands()))
        .expect("cib.xml");
    let mut c = Crash::new(scratch.path(), cib);
    let formed = c.form();
    if formed {
        c.mount_all();
        let only = std::env::var("HANDOFF_SCENARIOS").unwrap_or_default();
        let kinds: Vec<&str> = ["poweroff", "hang", "split"]
            .into_iter()
            .filter(|k| only.is_empty() || only.split(',').any(|s| s == *k))
            .collect();
        for (i, kind) in kinds.iter().enumerate() {
            if !c.crash(kind, i + 1 == kinds.len()) {
                break;
            }
        }
    }
    let logs = workspace_root().join("target/vm-logs");
    c.save_logs(&logs);
    let took = c.elapsed();
    let report = &c.report;
    let _ = std::fs::write(
        logs.join("crash-metrics.json"),
        serde_json::to_string_pretty(
            &report
                .metrics
                .iter()
                .map(|m| {
                    (
                        m.name.clone(),
                        serde_json::json!({"value": m.value, "unit": m.unit}),
                    )
                })
                .collect::<serde_json::Map<_, _>>(),
        )
        .unwrap_or_default(),
    );
    eprintln!(
        "\ncrash: {} checks, {} failed, {:.0} s",
        report.checks.len(),
        report.checks.iter().filter(|c| !c.ok).count(),
        took.as_secs_f64()
    );
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    assert!(
        formed,
        "the cluster did not form; see target/vm-logs/crash-*"
    );
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
}
