//! The server's helper, detached at start inside its namespaces: it waits
//! for the virtual IP, tells the clients recorded on the export that their
//! server "rebooted" (so that they reclaim their locks here), and ends the
//! grace period after grace_time seconds. lockd's own grace length is one
//! setting for every namespace of the kernel; ending it here makes
//! grace_time this server's alone.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ocf::{Logger, ParamValue};

use crate::nfsd;

/// The helper flag.
pub const FLAG: &str = "--grace-helper";

/// How long the helper waits for the virtual IP to come up (the rest of
/// the group's start: export, vip).
const IP_WAIT: Duration = Duration::from_secs(300);

/// The helper's arguments, in order.
pub fn args(instance: &str, server: &str, ip: IpAddr, name: &str, grace_secs: u64) -> [String; 5] {
    [
        instance.to_owned(),
        server.to_owned(),
        ip.to_string(),
        name.to_owned(),
        grace_secs.to_string(),
    ]
}

/// `nfs-server --grace-helper INSTANCE SERVER IP NAME GRACE_SECS`, started
/// in the node's namespaces; the exit code.
pub fn main(args: &[String]) -> i32 {
    let started = Instant::now();
    let [instance, server, ip, name, grace] = args else {
        eprintln!("usage: nfs-server {FLAG} INSTANCE SERVER IP NAME GRACE_SECS");
        return 2;
    };
    let log = Logger::from_env("nfs-server", instance);
    let parsed = (
        ip.parse::<IpAddr>(),
        grace.parse::<u64>(),
        vserver::ServerName::parse_value(server),
    );
    let (Ok(ip), Ok(grace), Ok(server)) = parsed else {
        log.err("grace helper: bad arguments");
        return 2;
    };
    if let Err(e) = vserver::Server::new(&server).enter(true, &log) {
        log.err(format!("grace helper: {e}"));
        return 1;
    }
    let mut code = 0;
    if nsm::wait_local(ip, started + IP_WAIT) {
        let state = Path::new("/var/lib/nfs");
        let clients = nsm::records(state);
        match nsm::notify(name, state) {
            Ok(took) => log.info(format!(
                "sent SM_NOTIFY as {name} from {ip} to {clients} client(s) in {:.1} ms; they reclaim their locks now",
                took.as_secs_f64() * 1000.0
            )),
            Err(why) => {
                log.err(format!("{why}; clients cannot reclaim their locks"));
                code = 1;
            }
        }
    } else {
        log.err(format!(
            "{ip} did not come up within {} s: no SM_NOTIFY sent; clients cannot reclaim their locks",
            IP_WAIT.as_secs()
        ));
        code = 1;
    }
    let end = started + Duration::from_secs(grace);
    if let Some(wait) = end.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    if nfsd::in_grace() == Some(true) {
        match nfsd::end_grace() {
            Ok(()) => log.info(format!("grace period ended after {grace} s")),
            Err(e) => {
                log.err(format!("cannot end the grace period: {e}"));
                code = 1;
            }
        }
    }
    code
}
