//! `dropin`: handoff's export beside the ClusterLabs exportfs it replaces,
//! in the same situations on node2's own NFS server: the exit code each
//! gives, case by case. A row whose codes differ is one of the README's
//! deliberate differences; every other row must agree (the host suite
//! `dropin` does the same for fs/Filesystem and vip/IPaddr2, which need no
//! nfsd).

use super::report::{check, note};
use super::scenarios::{agent_at, World};
use super::topo::Host;

/// The tmpfs every case exports (tmpfs needs an fsid, as a shared disk
/// gets one from the group).
const DIR: &str = "/srv/dropin";
/// A plain directory inside it: not a mount point.
const SUB: &str = "/srv/dropin/sub";
const CLIENTS: &str = "192.0.2.0/24";
const EXPORTFS: &str = "/usr/lib/ocf/resource.d/heartbeat/exportfs";

/// What happens to the system before the compared action.
#[derive(Clone, Copy)]
enum Before {
    /// Nothing.
    Nothing,
    /// The agent's start.
    Start,
    /// The agent's start, then an unexport behind its back.
    StartThenUnexport,
    /// The agent's start and stop.
    StartStop,
    /// exportfs exports the directory, not the agent.
    ExportedByHand,
}

/// One situation: parameters that differ from the defaults, what comes
/// first, the action compared and the code each agent gives.
struct Case {
    name: &'static str,
    set: &'static [(&'static str, &'static str)],
    before: Before,
    /// start, stop, monitor (recurring) or probe (monitor, interval 0).
    action: &'static str,
    handoff: i32,
    clusterlabs: i32,
}

const CASES: &[Case] = &[
    Case {
        name: "not exported, monitor",
        set: &[],
        before: Before::Nothing,
        action: "monitor",
        handoff: 7,
        clusterlabs: 7,
    },
    Case {
        name: "not exported, stop",
        set: &[],
        before: Before::Nothing,
        action: "stop",
        handoff: 0,
        clusterlabs: 0,
    },
    Case {
        name: "started, monitor",
        set: &[],
        before: Before::Start,
        action: "monitor",
        handoff: 0,
        clusterlabs: 0,
    },
    Case {
        name: "started, start again",
        set: &[],
        before: Before::Start,
        action: "start",
        handoff: 0,
        clusterlabs: 0,
    },
    Case {
        name: "stopped, monitor",
        set: &[],
        before: Before::StartStop,
        action: "monitor",
        handoff: 7,
        clusterlabs: 7,
    },
    Case {
        name: "unexported behind the agent's back, monitor",
        set: &[],
        before: Before::StartThenUnexport,
        action: "monitor",
        handoff: 7,
        clusterlabs: 7,
    },
    Case {
        // exportfs answers from its own state file, export from the
        // kernel's table: a probe that says stopped while the directory is
        // exported lets Pacemaker export it on a second node.
        name: "exported by hand, not by the agent, probe",
        set: &[],
        before: Before::ExportedByHand,
        action: "probe",
        handoff: 0,
        clusterlabs: 7,
    },
    Case {
        // A directory missing on this node (its filesystem not mounted)
        // is this node's problem: exportfs's OCF_ERR_CONFIGURED stops the
        // resource on every node.
        name: "directory missing, start",
        set: &[("directory", "/srv/dropin/missing")],
        before: Before::Nothing,
        action: "start",
        handoff: 1,
        clusterlabs: 6,
    },
    Case {
        name: "directory missing, probe",
        set: &[("directory", "/srv/dropin/missing")],
        before: Before::Nothing,
        action: "probe",
        handoff: 7,
        clusterlabs: 7,
    },
    Case {
        // Exporting the directory a filesystem should be mounted on
        // serves the wrong files; allow_non_mountpoint=true asks for it.
        name: "directory not a mount point, start",
        set: &[("directory", SUB)],
        before: Before::Nothing,
        action: "start",
        handoff: 1,
        clusterlabs: 0,
    },
    Case {
        name: "fsid with a comma, start",
        set: &[("fsid", "7,8")],
        before: Before::Nothing,
        action: "start",
        handoff: 6,
        clusterlabs: 6,
    },
];

/// The parameters of `case` for either agent (their names are the same).
fn params(case: &Case) -> Vec<(&'static str, &'static str)> {
    let mut p = vec![
        ("clientspec", CLIENTS),
        ("directory", DIR),
        ("fsid", "77"),
        ("options", "rw,sync,no_root_squash,no_subtree_check"),
    ];
    for (k, v) in case.set {
        p.retain(|(x, _)| x != k);
        p.push((k, v));
    }
    p
}

/// Run `action` of the agent at `program`; monitor is a recurring one,
/// probe a monitor of interval 0.
fn act(h: &Host, program: &str, instance: &str, action: &str, p: &[(&str, &str)]) -> i32 {
    let (verb, interval) = match action {
        "probe" => ("monitor", "0"),
        "monitor" => ("monitor", "10000"),
        other => (other, "0"),
    };
    let mut all = p.to_vec();
    all.push(("CRM_meta_interval", interval));
    let d = agent_at(h, program, verb, instance, &all);
    if d.code != 0 && verb != "monitor" {
        note(format!(
            "dropin: {program} {action}: {} {}",
            d.code,
            d.reason()
        ));
    }
    d.code
}

/// Leave nothing of a case behind: no export of the directories, whatever
/// the agents left.
fn clean(h: &Host) {
    for d in [DIR, SUB] {
        let _ = h.run(&["exportfs", "-u", &format!("{CLIENTS}:{d}")]);
    }
}

/// One agent through one case: the compared action's code, or why the
/// case could not be set up.
fn one(h: &Host, program: &str, instance: &str, case: &Case) -> Result<i32, String> {
    let p = params(case);
    clean(h);
    let start = |what: &str| match act(h, program, instance, "start", &p) {
        0 => Ok(()),
        c => Err(format!("{what}: start gave {c}")),
    };
    match case.before {
        Before::Nothing => {}
        Before::Start => start("before")?,
        Before::StartThenUnexport => {
            start("before")?;
            clean(h);
        }
        Before::StartStop => {
            start("before")?;
            match act(h, program, instance, "stop", &p) {
                0 => {}
                c => return Err(format!("before: stop gave {c}")),
            }
        }
        Before::ExportedByHand => {
            let by_hand = h.run(&[
                "exportfs",
                "-o",
                "rw,sync,no_root_squash,no_subtree_check,fsid=77",
                &format!("{CLIENTS}:{DIR}"),
            ]);
            if by_hand.code != 0 {
                return Err(format!("exportfs by hand: {}", by_hand.stderr.trim()));
            }
        }
    }
    let code = act(h, program, instance, case.action, &p);
    // Each agent's own stop, then whatever is left.
    let _ = act(h, program, instance, "stop", &p);
    clean(h);
    Ok(code)
}

/// Every case, handoff's export then exportfs, on node2.
pub fn export(w: &mut World) {
    let h = &w.node2;
    // Made through node2's root, as the other scenarios make theirs.
    let root = format!("/proc/{}/root", h.pid);
    let _ = std::fs::create_dir_all(format!("{root}{DIR}"));
    h.ok(&["mount", "-t", "tmpfs", "-o", "size=8m", "dropin", DIR]);
    if let Err(e) = std::fs::create_dir_all(format!("{root}{SUB}")) {
        check(
            "dropin: a plain directory inside the export",
            false,
            e.to_string(),
        );
        return;
    }
    if !std::path::Path::new(EXPORTFS).exists() {
        check(
            "dropin: the ClusterLabs exportfs agent is installed",
            false,
            EXPORTFS,
        );
        return;
    }
    for (i, case) in CASES.iter().enumerate() {
        let ours = one(
            h,
            "/handoff/bin/export",
            &format!("dropin_export_{i}"),
            case,
        );
        let theirs = one(h, EXPORTFS, &format!("dropin_exportfs_{i}"), case);
        let want = (case.handoff, case.clusterlabs);
        check(
            &format!(
                "dropin: {} (export {}, exportfs {})",
                case.name, want.0, want.1
            ),
            ours.as_ref().ok() == Some(&want.0) && theirs.as_ref().ok() == Some(&want.1),
            format!("export {ours:?}, exportfs {theirs:?}"),
        );
    }
    let _ = h.run(&["umount", DIR]);
}
