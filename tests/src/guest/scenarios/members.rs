//! Running the agents of one export group on a node, as Pacemaker would.

use super::*;

/// The nlm-locks backend the scenarios use (`handoff.backend=` on the
/// kernel command line; procfs unless told otherwise).
pub(crate) fn backend() -> &'static str {
    static B: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    B.get_or_init(|| super::cmdline("handoff.backend").unwrap_or_else(|| "procfs".into()))
}

/// Run an agent action in a host, as Pacemaker's executor would.
pub(crate) fn agent(
    h: &Host,
    name: &str,
    action: &str,
    instance: &str,
    params: &[(&str, &str)],
) -> Done {
    agent_at(h, &format!("/handoff/bin/{name}"), action, instance, params)
}

/// Run the agent at `program` (handoff's or a ClusterLabs one) as
/// Pacemaker's executor would; `params` may set CRM_meta_* too.
pub(crate) fn agent_at(
    h: &Host,
    program: &str,
    action: &str,
    instance: &str,
    params: &[(&str, &str)],
) -> Done {
    let mut c = h.cmd(&[program, action]);
    c.env_clear()
        .env("PATH", PATH)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", instance)
        .env("HA_RSCTMP", "/run/resource-agents")
        .env("HA_LOGFACILITY", "none")
        .env("HA_LOGFILE", "/run/agents.log")
        .env("OCF_RESKEY_CRM_meta_timeout", "60000");
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    sys::run(&mut c)
}

/// A group's fs parameters.
pub(crate) fn fs_params(g: &Group) -> Params {
    vec![
        ("device", g.dev.into()),
        ("directory", g.dir.into()),
        ("fstype", "ext4".into()),
    ]
}

/// A group's export parameters.
pub(crate) fn export_params(g: &Group) -> Params {
    vec![
        ("clientspec", "192.0.2.0/24".into()),
        ("directory", g.dir.into()),
        ("fsid", g.fsid.into()),
        ("options", "rw,sync,no_root_squash,no_subtree_check".into()),
    ]
}

/// A group's vip parameters.
pub(crate) fn vip_params(g: &Group) -> Params {
    vec![
        ("ip", g.vip.into()),
        ("cidr_netmask", "24".into()),
        ("nic", "eth0".into()),
        ("arp_count", "2".into()),
    ]
}

/// A node-wide group's members in start order (fs, nlm-locks, export,
/// vip), with their parameters.
pub(crate) fn nodewide_members(g: &Group, grace: &str, backend: &str) -> Members {
    let locks = vec![
        ("directory", g.dir.into()),
        ("ip", g.vip.into()),
        ("notify_name", g.name.into()),
        ("grace", grace.into()),
        ("backend", backend.into()),
        ("fsid", g.fsid.into()),
    ];
    vec![
        ("fs", fs_params(g)),
        ("nlm-locks", locks),
        ("export", export_params(g)),
        ("vip", vip_params(g)),
    ]
}

pub(crate) fn run_member(
    h: &Host,
    g: &Group,
    agent_name: &str,
    action: &str,
    params: &[(&'static str, String)],
) -> Done {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    agent(
        h,
        agent_name,
        action,
        &format!("{}_{}", g.id, agent_name.replace('-', "_")),
        &p,
    )
}

/// One agent's parameters.
pub(crate) type Params = Vec<(&'static str, String)>;
/// A group's members with their parameters, in start order.
pub(crate) type Members = Vec<(&'static str, Params)>;

/// Start a group in order; stops at the first failure, as Pacemaker does.
pub(crate) fn start_group(h: &Host, g: &Group, grace: &str) -> Vec<(&'static str, Done)> {
    start_members(h, g, nodewide_members(g, grace, backend()))
}

/// Stop a group in reverse order; stops at the first failure.
pub(crate) fn stop_group(h: &Host, g: &Group, backend: &str) -> Vec<(&'static str, Done)> {
    stop_members(h, g, nodewide_members(g, "existing", backend))
}

/// Start `list` in order; stops at the first failure, as Pacemaker does.
pub(crate) fn start_members(h: &Host, g: &Group, list: Members) -> Vec<(&'static str, Done)> {
    start_members_paused(h, g, list, None)
}

/// As [`start_members`], waiting `pause` after the member `after` started
/// (a group whose later members start slowly: a slow fsck, Pacemaker busy
/// with other groups).
pub(crate) fn start_members_paused(
    h: &Host,
    g: &Group,
    list: Members,
    pause: Option<(&str, Duration)>,
) -> Vec<(&'static str, Done)> {
    let mut done = Vec::new();
    for (a, params) in list {
        let d = run_member(h, g, a, "start", &params);
        let failed = d.code != 0;
        done.push((a, d));
        if failed {
            break;
        }
        if let Some((_, p)) = pause.filter(|(after, _)| *after == a) {
            note(format!(
                "pausing {} s after {a} of {} started",
                p.as_secs(),
                g.id
            ));
            std::thread::sleep(p);
        }
    }
    done
}

/// Stop `list` in reverse order; stops at the first failure.
pub(crate) fn stop_members(h: &Host, g: &Group, list: Members) -> Vec<(&'static str, Done)> {
    let mut done = Vec::new();
    for (a, params) in list.into_iter().rev() {
        let d = run_member(h, g, a, "stop", &params);
        let failed = d.code != 0;
        done.push((a, d));
        if failed {
            break;
        }
    }
    done
}

pub(crate) fn all_ok(steps: &[(&str, Done)]) -> (bool, String) {
    all_of_ok(steps, 4)
}

/// As [`all_ok`], for `n` members (part of a group).
pub(crate) fn all_of_ok(steps: &[(&str, Done)], n: usize) -> (bool, String) {
    let ok = steps.len() == n && steps.iter().all(|(_, d)| d.code == 0);
    let detail = steps
        .iter()
        .map(|(a, d)| format!("{a}={} {:.1}ms {}", d.code, d.ms(), d.reason()))
        .collect::<Vec<_>>()
        .join("; ");
    (ok, detail)
}

pub(crate) fn total_ms(steps: &[(&str, Done)]) -> f64 {
    steps.iter().map(|(_, d)| d.ms()).sum()
}

/// Spawn a program whose first output line says it is ready.
pub(crate) fn spawn_ready(mut cmd: std::process::Command, timeout: Duration) -> (Child, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).unwrap_or_default();
    (child, line.trim().to_owned())
}

pub(crate) fn kill(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

pub(crate) fn lock_cmd(h: &Host, args: &[&str]) -> std::process::Command {
    let mut all = vec!["/handoff/bin/handoff-vmtest", "--lock"];
    all.extend_from_slice(args);
    h.cmd(&all)
}

/// Write (`write`) or check (`verify`) 1 MiB of content made from `seed`
/// at `path`, from `client`.
pub(crate) fn data_on(client: &Host, verb: &str, path: &str, seed: &str) -> Done {
    client.run_for(
        &[
            "/handoff/bin/handoff-vmtest",
            "--lock",
            verb,
            path,
            DATA_BYTES,
            seed,
        ],
        CLIENT_LIMIT,
    )
}
