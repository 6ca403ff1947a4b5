//! ocf:handoff:nfs-server — the `Agent` implementation: what each action
//! does, in terms of the modules beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use nsm::reclaim::{Expect, LockdGrace, LOCKD_GRACE_MAX};
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Facts, OcfError};
use systables::locks::{self, Dev};
use systables::mountinfo;
use vserver::Server;

use crate::daemons::{self, Daemon, Members, Sockets};
use crate::error::ServerError;
use crate::namespace::{self, Layout};
use crate::params::ServerParams;
use crate::{grace, link, nfsd};

/// The agent.
pub struct NfsServer;

const INFO: AgentInfo = AgentInfo {
    provider: "handoff",
    name: "nfs-server",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "A virtual NFS server for one export group",
    longdesc: "Runs an NFS server of its own (NFSv3 and NFSv4.1/4.2 by default) for one export \
group, in namespaces of its own on this node: a network namespace (/run/netns/NAME) whose \
interface is a macvlan on the node's network, a mount namespace whose /var/lib/nfs is a \
directory on the exported filesystem (so statd's client records, nfsdcld's NFSv4 client \
database, the export table and the NSM state number move with the export), and a UTS namespace \
named after it (so the NFSv4 server scope is the same on every node). Inside run rpcbind, \
rpc.statd, rpc.mountd, nfsdcld and nfsd with its lockd. The group reads fs, nfs-server, export \
(nfs_server=NAME), vip (network_namespace=NAME).\n\n\
Because nfsd, lockd and their grace period belong to a network namespace, a start opens a \
grace period for this export alone: once the virtual IP is up, its NFSv3 clients are told by \
SM_NOTIFY and its NFSv4 clients reconnect, and they reclaim their locks and opens within \
grace_time; the grace ends as soon as every client is back, and no other export on the node \
waits. Stop drops the clients' NLM locks on the exported filesystem (unlock_filesystem: not \
every kernel releases them with nfsd), stops nfsd while statd still runs (nfsd's stop ends \
its NFSv4 state), keeps the client records on the export, checks that no \
lock of the exported filesystem held for a client remains, ends every process left in the \
namespaces and removes them, so that nothing on the node holds the filesystem any more.",
    actions: &[
        ActionSpec::new(Action::Start, 60),
        ActionSpec::new(Action::Stop, 60),
        ActionSpec::monitor(10, 20, 0),
        ActionSpec::new(Action::ValidateAll, 20),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::Reload, 20),
    ],
    example: "pcs resource create export_a_server ocf:handoff:nfs-server name=nfs-a directory=/srv/nfs/a \\\n    ip=192.0.2.100 nic=eth0 op monitor interval=10s --group export_a",
};

/// The helper's PID file and the daemons' PIDs.
fn pids_file(ctx: &Ctx) -> ocf::StateFile {
    ctx.state("daemons")
}

fn saved_pid(ctx: &Ctx, d: Daemon) -> Option<i32> {
    let text = pids_file(ctx).read().ok().flatten()?;
    String::from_utf8_lossy(&text).lines().find_map(|l| {
        let (name, pid) = l.split_once(' ')?;
        (name == d.comm()).then(|| pid.parse().ok()).flatten()
    })
}

/// Give the daemons lockd waits for the nice value `nice`. A failure
/// only costs the other exports' lock latency under load: a warning.
fn renice_daemons(ctx: &Ctx, pids: &[(Daemon, i32)], nice: i32) {
    for (d, pid) in pids.iter().filter(|(d, _)| d.lockd_waits_for()) {
        if let Err(e) = daemons::renice(*pid, nice) {
            ctx.log.warn(format!(
                "cannot set the nice value of {} (PID {pid}) to {nice}: {e}",
                d.comm()
            ));
        }
    }
}

fn save_pids(ctx: &Ctx, pids: &[(Daemon, i32)]) {
    let text: String = pids
        .iter()
        .map(|(d, p)| format!("{} {p}\n", d.comm()))
        .collect();
    if let Err(e) = pids_file(ctx).write(text.as_bytes()) {
        ctx.log
            .warn(format!("cannot record the daemons' PIDs: {e}"));
    }
}

fn members(server: &Server) -> Members {
    let (net, mnt) = namespace::inodes(server);
    Members { net, mnt }
}

/// Return to the node's namespaces.
fn back(server: &Server, node: &vserver::Node) -> Result<(), ServerError> {
    node.back().map_err(|e| ServerError::Namespace {
        name: server.name.clone(),
        what: "returning to the node".into(),
        why: e.to_string(),
    })
}

/// Whether `dir` is the root of a mount (in the node's mount namespace).
fn mounted_dev(dir: &Path) -> Option<(u32, u32)> {
    let table = mountinfo::read().ok()?;
    mountinfo::at(&table, dir).last().map(|m| m.dev)
}

/// The node's /etc/hosts with the server's names for its virtual IP
/// first, so that sm-notify resolves them to it.
fn hosts_file(p: &ServerParams) -> String {
    let node = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names = vec![p.name.0.as_str()];
    if p.notify_name() != p.name.0 {
        names.insert(0, p.notify_name());
    }
    format!("{} {}\n127.0.0.1 localhost\n{node}", p.ip, names.join(" "))
}

/// Create the state directory's layout on the export (statd refuses to run
/// without sm/ and sm.bak/).
fn prepare_state(p: &ServerParams) -> Result<(), ServerError> {
    let state = p.state_path();
    restore_records(&state).map_err(ServerError::io("restoring the client records in", &state))?;
    for d in ["sm", "sm.bak", "nfsdcld"] {
        let dir = state.join(d);
        std::fs::create_dir_all(&dir).map_err(ServerError::io("creating", &dir))?;
    }
    for f in ["etab", "rmtab"] {
        let file = state.join(f);
        if !file.exists() {
            std::fs::write(&file, "").map_err(ServerError::io("creating", &file))?;
        }
    }
    Ok(())
}

/// End every process in the server and remove its namespaces.
fn tear_down(ctx: &Ctx, server: &Server) -> Result<(), ServerError> {
    let m = members(server);
    let procs = m.all();
    if !procs.is_empty() {
        // Even out of time, the processes get a chance to go.
        let grace = (ctx.deadline.remaining() / 2)
            .clamp(Duration::from_millis(500), Duration::from_secs(3));
        let names = daemons::describe(&procs);
        let left = daemons::end(&procs, grace, grace);
        if !left.is_empty() {
            return Err(ServerError::Stuck {
                name: server.name.clone(),
                pids: daemons::describe(&left),
            });
        }
        ctx.log.info(format!("ended {names}"));
    }
    namespace::remove(server)
}

/// The clients' records, saved aside while nfsd stops (see `shut_down`).
const RECORDS_ASIDE: &str = "sm.handoff";

/// Inside the server: stop nfsd (its lockd releases this server's locks)
/// and statd, keeping statd's client records. Order matters twice: lockd's
/// shutdown asks statd to forget each client (SM_UNMON), and statd deletes
/// their records; but with statd gone first, each of those calls waits a
/// minute for statd while holding lockd's host table, and every other
/// server on the node waits with it. So statd stays up for the shutdown,
/// the records are saved aside before it and put back after statd ended.
fn shut_down(ctx: &Ctx, m: &Members, export: &Path) -> Result<(), ServerError> {
    let state = Path::new("/var/lib/nfs");
    let aside = state.join(RECORDS_ASIDE);
    let saved = nsm::mirror(&state.join("sm"), &aside)
        .map_err(ServerError::io("saving the client records to", &aside))?;
    if nfsd::threads().unwrap_or(0) > 0 {
        // Its address is gone: no client takes a lock in between. Should
        // lockd fail to drop one, the check after the stop refuses.
        match nfsd::unlock_filesystem(export) {
            Ok(()) => ctx.log.info(format!(
                "dropped the clients' NLM locks on {} before nfsd stops (unlock_filesystem): not every kernel releases them with nfsd",
                export.display()
            )),
            Err(e) => ctx.log.warn(format!("{e}; nfsd's stop must release the locks")),
        }
        let t = Instant::now();
        nfsd::set_threads(0)?;
        ctx.log
            .info(format!("nfsd stopped in {} ms", t.elapsed().as_millis()));
    }
    nfsd::flush_caches();
    if let Some(pid) = m.find(Daemon::Statd, saved_pid(ctx, Daemon::Statd)) {
        daemons::end(&[pid], Duration::from_secs(2), Duration::from_secs(2));
    }
    restore_records(state).map_err(ServerError::io("restoring the client records from", &aside))?;
    ctx.log.info(format!(
        "{saved} client record(s) stay on the export for the next start"
    ));
    Ok(())
}

/// After nfsd stopped: make lockd serve the requests the kernel may have
/// left waiting for the node's other servers (see vserver::lockd).
fn wake_lockd(ctx: &Ctx, server: &Server, node: &vserver::Node) {
    let budget = (ctx.deadline.remaining() / 4).min(Duration::from_secs(2));
    match vserver::lockd::wake(node.net(), &server.name, budget) {
        Ok(via) => ctx.log.info(format!("woke lockd through {via}")),
        Err(why) => ctx.log.info(format!("lockd not woken: {why}")),
    }
}

/// Inside the server: record its clients' TCP connections on the export,
/// for the helper of the next start to tickle. A stop merges (see
/// [`nsm::tickle::Update`]): in a group nothing is left in the table by
/// then (nfsd closes its connections to an address as the address goes,
/// measured), but vip noted them as it removed the address, and a server
/// stopped with its address still up finds them here.
fn record_clients(ctx: &Ctx, p: &ServerParams, update: nsm::tickle::Update) {
    nsm::tickle::keep(&ctx.log, Path::new("/var/lib/nfs"), p.ip, update);
}

/// Put back the client records a shutdown saved aside, if it was cut
/// short before it could.
fn restore_records(state: &Path) -> std::io::Result<()> {
    let aside = state.join(RECORDS_ASIDE);
    if aside.is_dir() {
        nsm::mirror(&aside, &state.join("sm"))?;
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(())
}

/// Wait until `pid` serves a socket in this namespace (it registered with
/// rpcbind and listens), or fail at `until`.
fn wait_serving(server: &Server, d: Daemon, pid: i32, until: Instant) -> Result<(), ServerError> {
    loop {
        if !daemons::alive(pid) {
            return Err(ServerError::Daemon {
                name: server.name.clone(),
                daemon: d.comm(),
                why: format!("it exited right away (PID {pid}); see the system log"),
            });
        }
        let ready = match d {
            Daemon::Rpcbind => Path::new("/run/rpcbind.sock").exists(),
            _ => d.serving(pid, &Sockets::read()),
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(ServerError::Daemon {
                name: server.name.clone(),
                daemon: d.comm(),
                why: "it did not listen within the start timeout".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a start that started nfsd (and with it a grace period) hands to
/// its helper.
struct Opened {
    /// Clients statd recorded.
    clients: usize,
    /// What comes back over NLM.
    expect: Expect,
}

/// Inside the server (`m`: its members, read before entering; `dev`: the
/// export's device; `setting`: lockd's grace, opened in the node): start
/// what is not running. Returns what the helper needs when nfsd (and with
/// it a grace period) started now, None when it was running.
fn start_inside(
    ctx: &Ctx,
    p: &ServerParams,
    (server, m): (&Server, &Members),
    dev: Dev,
    setting: Option<&LockdGrace>,
) -> Result<Option<Opened>, ServerError> {
    let until = Instant::now()
        + ctx
            .deadline
            .remaining()
            .saturating_sub(Duration::from_secs(2));
    let mut pids = Vec::new();
    for d in Daemon::ALL {
        let pid = match m.find(d, saved_pid(ctx, d)) {
            Some(pid) => pid,
            None => {
                let pid = d.spawn().map_err(|e| ServerError::Daemon {
                    name: server.name.clone(),
                    daemon: d.comm(),
                    why: e.to_string(),
                })? as i32;
                pids.push((d, pid));
                save_pids(ctx, &pids);
                wait_serving(server, d, pid, until)?;
                ctx.log.info(format!("{} started (PID {pid})", d.comm()));
                pid
            }
        };
        if !pids.iter().any(|(x, _)| *x == d) {
            pids.push((d, pid));
        }
    }
    save_pids(ctx, &pids);
    renice_daemons(ctx, &pids, p.daemon_nice.0);
    if nfsd::threads().unwrap_or(0) > 0 {
        return Ok(None);
    }
    let state = Path::new("/var/lib/nfs");
    // A clean release's record holds for this start only.
    let released = nsm::reclaim::take_release(state);
    let clients = nsm::records(state);
    let expect = Expect::from(dev, clients, released);
    let held = setting.map(|s| s.hold(LOCKD_GRACE_MAX)).transpose();
    if let Err(e) = &held {
        ctx.log.warn(format!(
            "cannot set lockd's grace for this start ({e}): NFSv3 clients get the node's setting"
        ));
    }
    let started = nfsd::start(&nfsd::Start {
        threads: p.threads.0,
        versions: &p.versions,
        grace: grace::kernel_grace(p.grace_time.0),
        lease: p.lease_time.0,
        scope: &server.name,
    });
    drop(held);
    let method = started.map_err(|why| ServerError::Daemon {
        name: server.name.clone(),
        daemon: "nfsd",
        why,
    })?;
    let cld = pids
        .iter()
        .find(|(d, _)| *d == Daemon::Nfsdcld)
        .map(|(_, p)| *p);
    // The kernel asks nfsdcld while nfsd starts: it has its pipe open now.
    // Without it NFSv4's long grace could not be ended early.
    if !cld.is_some_and(daemons::tracking) && !nfsd::v4_grace_ended() {
        return Err(ServerError::NoTracking(server.name.clone()));
    }
    ctx.log.info(format!(
        "nfsd started through {method} with {} threads, NFS {}, scope {}: a grace period for this server alone, until its {clients} recorded client(s) reclaimed or {} s after they are told",
        p.threads.0, p.versions, server.name, p.grace_time.0
    ));
    Ok(Some(Opened { clients, expect }))
}

/// Start the helper that notifies the clients once the virtual IP is up
/// and ends the grace period (it enters the server itself).
fn spawn_helper(ctx: &Ctx, p: &ServerParams, opened: &Opened) {
    let helper = ctx.state("helper");
    ocf::helper::stop(grace::FLAG, &helper);
    let job = grace::Job {
        instance: ctx.instance.clone(),
        server: p.name.0.clone(),
        ip: p.ip,
        notify_name: p.notify_name().to_owned(),
        grace_secs: p.grace_time.0,
        expect: opened.expect,
        threads: p.threads.0,
        versions: p.versions.clone(),
        lease_secs: p.lease_time.0,
        tickle: p.tickle,
    };
    match ocf::helper::spawn(grace::FLAG, job.to_args(), &helper) {
        Ok(pid) => ctx.log.info(format!(
            "helper {pid} notifies the {} recorded client(s) once {} is up, and ends the grace period",
            opened.clients, p.ip
        )),
        Err(e) => ctx.log.err(format!(
            "cannot start the notification helper: {e}; clients will not reclaim their locks"
        )),
    }
}

/// Inside the server (`m`: its members, read before entering): what is
/// wrong with it, if anything.
fn health(ctx: &Ctx, p: &ServerParams, server: &Server, m: &Members) -> Result<Facts, ServerError> {
    let sockets = Sockets::read();
    let mut facts = Facts::new().with("name", &server.name);
    for d in Daemon::ALL {
        let pid = m.find(d, saved_pid(ctx, d)).ok_or_else(|| {
            ServerError::Unhealthy(format!(
                "{} of virtual NFS server {} is not running",
                d.comm(),
                server.name
            ))
        })?;
        if !d.serving(pid, &sockets) {
            return Err(ServerError::Unhealthy(format!(
                "{} (PID {pid}) of virtual NFS server {} does not serve",
                d.comm(),
                server.name
            )));
        }
        facts = facts.with(d.comm(), pid);
    }
    let threads = nfsd::threads().unwrap_or(0);
    if threads == 0 {
        return Err(ServerError::Unhealthy(format!(
            "nfsd of virtual NFS server {} is not running (0 threads)",
            server.name
        )));
    }
    if !sockets.tcp_listens(p.ip, nfsd::PORT) {
        return Err(ServerError::Unhealthy(format!(
            "nfsd of virtual NFS server {} does not listen on {}:{}",
            server.name,
            p.ip,
            nfsd::PORT
        )));
    }
    let mut facts = facts
        .with("threads", threads)
        .with("versions", &p.versions)
        .with("ip_up", nsm::is_local(p.ip))
        .with("in_grace", nfsd::in_grace().unwrap_or(false))
        .with("v4_grace_ended", nfsd::v4_grace_ended())
        .with("clients", nsm::records(Path::new("/var/lib/nfs")));
    if let Some(n) = nfsd::v4_clients() {
        facts = facts.with("v4_clients", n);
    }
    if let Some(r) = grace::progress() {
        facts = facts.with("reclaim", r.phase);
        if let Some(o) = r.outcome {
            facts = facts.with("reclaim_outcome", o);
        }
    }
    Ok(facts)
}

impl Agent for NfsServer {
    type Params = ServerParams;
    const INFO: AgentInfo = INFO;

    fn validate(&self, ctx: &Ctx, p: &ServerParams) -> ocf::Result<()> {
        for prog in [
            "rpcbind",
            "rpc.statd",
            "rpc.mountd",
            "nfsdcld",
            "rpc.nfsd",
            "exportfs",
        ] {
            if systables::sbin(prog).is_none() {
                return Err(ServerError::NotInstalled(prog.into()).into());
            }
        }
        if nsm::sm_notify().is_none() {
            return Err(ServerError::NotInstalled("sm-notify".into()).into());
        }
        if !nfsd::available() {
            return Err(ServerError::NoNfsd.into());
        }
        if nix::net::if_::if_nametoindex(p.nic.0.as_str()).is_err() {
            return Err(ServerError::NoNic(p.nic.0.clone()).into());
        }
        let server = Server::new(&p.name);
        if !namespace::netns_is_ours(&server) {
            return Err(ServerError::ForeignNetns(server.name.clone(), server.dir()).into());
        }
        if p.grace_time.0 > LOCKD_GRACE_MAX {
            ctx.log.warn(format!(
                "grace_time {} s: lockd keeps NFSv3 reclaims open at most {LOCKD_GRACE_MAX} s after nfsd starts",
                p.grace_time.0
            ));
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx, p: &ServerParams) -> ocf::Result<()> {
        let server = Server::new(&p.name);
        let dir = p.directory.as_path();
        let Some(dev) = mounted_dev(dir) else {
            return Err(ServerError::NotMounted(dir.to_owned()).into());
        };
        if !server.is_ready() {
            if namespace::any_part(&server) {
                ctx.log.warn("removing the remains of an interrupted start");
                tear_down(ctx, &server)?;
            }
            prepare_state(p)?;
            let layout = Layout {
                export: dir,
                state: &p.state_path(),
                hosts: hosts_file(p),
            };
            namespace::create(&server, &layout)?;
            let netns = namespace::open_netns(&server)?;
            use std::os::fd::AsFd;
            link::create_macvlan(&p.nic.0, &link::transit_name(&server.name), netns.as_fd())?;
            std::fs::write(server.ready_marker(), "")
                .map_err(ServerError::io("writing", server.ready_marker()))?;
            ctx.log.info(format!(
                "namespaces of {} created: {} on {} (macvlan), state in {}",
                server.name,
                p.interface.0,
                p.nic.0,
                p.state_path().display()
            ));
        }
        // Its namespace files are out of sight once inside.
        let m = members(&server);
        let node = vserver::Node::current().map_err(ServerError::io("opening", "/proc/self/ns"))?;
        // Opened in the node: its lock file is in the node's /run.
        let setting = LockdGrace::open()
            .map_err(|e| ctx.log.warn(format!("lockd's grace setting: {e}")))
            .ok();
        server.enter(true, &ctx.log).map_err(ServerError::from)?;
        let started = match link::bring_up(&link::transit_name(&server.name), &p.interface.0) {
            Ok(true) => start_inside(ctx, p, (&server, &m), dev, setting.as_ref()),
            Ok(false) => Err(ServerError::Unhealthy(format!(
                "interface {} is missing from virtual NFS server {}; stop and start it again",
                p.interface.0, server.name
            ))),
            Err(e) => Err(e),
        };
        back(&server, &node)?;
        if let Some(opened) = started? {
            spawn_helper(ctx, p, &opened);
        }
        Ok(())
    }

    fn stop(&self, ctx: &Ctx, p: &ServerParams) -> ocf::Result<()> {
        let server = Server::new(&p.name);
        if !namespace::any_part(&server) {
            ctx.log
                .info(format!("virtual NFS server {} is not running", server.name));
            return Ok(());
        }
        if !namespace::netns_is_ours(&server) {
            return Err(ServerError::ForeignNetns(server.name.clone(), server.dir()).into());
        }
        let m = members(&server);
        let dev = mounted_dev(p.directory.as_path());
        let mut frozen = None;
        // Counting a lock table that hides the clients' locks would tell
        // the next start there were none, and it would end the grace
        // before they reclaim.
        let visible = locks::owners_visible();
        if !visible {
            ctx.log.warn(
                "this /proc hides lockd's and nfsd's locks (a PID namespace): the clients' locks cannot be counted, the next start keeps its whole grace period",
            );
        }
        if server.is_ready() {
            ocf::helper::stop(grace::FLAG, &ctx.state("helper"));
            let node =
                vserver::Node::current().map_err(ServerError::io("opening", "/proc/self/ns"))?;
            // vip's note is on this node's HA_RSCTMP: read before entering.
            let departed = p
                .tickle
                .then(|| nsm::tickle::Departed::new(&ctx.state_dir, p.ip).take());
            server.enter(false, &ctx.log).map_err(ServerError::from)?;
            // What the clients hold, when they can no longer change it (the
            // address is gone): the next start waits for as many.
            if let Some(dev) = dev.filter(|_| !nsm::is_local(p.ip) && visible) {
                frozen = locks::held_on(&[dev]).first().map(|h| h.client_locks());
            }
            if let Some(departed) = &departed {
                record_clients(ctx, p, nsm::tickle::Update::Merge(departed));
            }
            let stopped = shut_down(ctx, &m, p.directory.as_path());
            nfsd::flush_caches();
            back(&server, &node)?;
            stopped?;
            wake_lockd(ctx, &server, &node);
        }
        if let Some(dev) = dev.filter(|_| visible) {
            let held = locks::held_on(&[dev]).remove(0);
            let left = held.client_locks() + held.delegations;
            if left > 0 {
                return Err(ServerError::LocksRemain {
                    name: server.name.clone(),
                    dir: p.directory.as_path().to_owned(),
                    count: left,
                }
                .into());
            }
            if let Some(n) = frozen {
                match nsm::reclaim::record_release(&p.state_path(), n) {
                    Ok(()) => ctx.log.info(format!(
                        "released with {n} lock(s) held for clients: the next start ends its grace once they are back"
                    )),
                    Err(e) => ctx.log.warn(format!(
                        "cannot record the release on the export ({e}): the next start keeps its whole grace period"
                    )),
                }
            }
        }
        tear_down(ctx, &server)?;
        let _ = pids_file(ctx).remove();
        ctx.log
            .info(format!("virtual NFS server {} is down", server.name));
        Ok(())
    }

    fn monitor(&self, ctx: &Ctx, p: &ServerParams) -> ocf::Result<Facts> {
        let server = Server::new(&p.name);
        if !server.is_ready() {
            if namespace::any_part(&server) && namespace::netns_is_ours(&server) {
                return Err(ServerError::Unhealthy(format!(
                    "virtual NFS server {} is half set up (a start was interrupted)",
                    server.name
                ))
                .into());
            }
            return Err(OcfError::not_running(format!(
                "virtual NFS server {} is not running",
                server.name
            )));
        }
        let m = members(&server);
        server.enter(false, &ctx.log).map_err(ServerError::from)?;
        let facts = health(ctx, p, &server, &m)?;
        // With the address down there are no connections to record, and
        // the record the helper tickles from must stay.
        if p.tickle && nsm::is_local(p.ip) {
            record_clients(ctx, p, nsm::tickle::Update::Replace);
        }
        Ok(facts)
    }

    fn reload(&self, ctx: &Ctx, p: &ServerParams) -> ocf::Result<()> {
        let server = Server::new(&p.name);
        if !server.is_ready() {
            return Ok(());
        }
        let m = members(&server);
        let pids: Vec<(Daemon, i32)> = Daemon::ALL
            .iter()
            .filter_map(|&d| Some((d, m.find(d, saved_pid(ctx, d))?)))
            .collect();
        renice_daemons(ctx, &pids, p.daemon_nice.0);
        server.enter(false, &ctx.log).map_err(ServerError::from)?;
        if nfsd::threads().unwrap_or(0) > 0 {
            nfsd::set_threads(p.threads.0)?;
            ctx.log.info(format!(
                "nfsd of {} now has {} threads",
                server.name, p.threads.0
            ));
        }
        Ok(())
    }
}
