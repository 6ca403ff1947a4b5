//! Waking lockd after an NFS server of the node stopped.
//!
//! lockd is one kernel thread serving every network namespace. When nfsd
//! stops in one namespace, the kernel (6.12, `svc_clean_up_xprts`) takes
//! every transport with pending requests off lockd's queue to close that
//! namespace's own, and puts the others back without waking lockd. If lockd
//! went to sleep meanwhile, the requests of every other server's clients
//! wait until something else wakes it: measured here as lock operations of
//! untouched exports stalling 1.5 to 6 s at each failover. A request to
//! lockd through any other transport wakes it, and it then drains the whole
//! queue; the answer to an NLM NULL call says it has.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use crate::{Server, SERVERS_DIR};

const PMAP_PROG: u32 = 100_000;
const PMAP_GETPORT: u32 = 3;
const NLM_PROG: u32 = 100_021;
const NLM_VERS: u32 = 4;
const IPPROTO_UDP: u32 = 17;

/// Where lockd was woken, or why it could not be.
pub type Woken = Result<String, String>;

/// Why one namespace's lockd did not answer.
#[derive(Debug, thiserror::Error)]
enum Miss {
    /// It may still: the call ran out of time (lockd busy, or asleep).
    #[error("{0}: no answer")]
    Late(&'static str),
    /// Nothing listens on the port: this namespace cannot answer.
    #[error("{0}: refused")]
    Refused(&'static str),
    /// rpcbind knows no lockd there.
    #[error("lockd does not listen there")]
    NotListening,
    /// The socket or the reply failed otherwise.
    #[error("{0}")]
    Other(String),
}

/// How long one namespace may take to answer before the next is tried: a
/// namespace without rpcbind or lockd refuses at once (the sockets are
/// connected, so the kernel's port-unreachable reaches the caller).
const PER_NAMESPACE: Duration = Duration::from_millis(500);

/// Wake lockd through the first of the node's network namespaces where it
/// listens (the node's own, then each ready virtual server's except
/// `except`), and wait until it answered. The list is tried again until
/// `budget` ends: when several servers stop at once (a node drained),
/// lockd answers late, and another stop may strand the queue again.
/// Where every namespace refused at once (no lockd anywhere), one round
/// is all. `node_net` is the namespace to come back to; the caller must be
/// in it and single-threaded.
pub fn wake(node_net: &File, except: &str, budget: Duration) -> Woken {
    let until = Instant::now() + budget;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut tried: Vec<String> = Vec::new();
        let mut late = false;
        for (name, netns) in candidates(except) {
            let now = Instant::now();
            if now >= until {
                tried.push(format!("{name}: not tried, out of time"));
                continue;
            }
            match ping_in(node_net, netns.as_ref(), until.min(now + PER_NAMESPACE)) {
                Ok(()) => return Ok(name),
                Err(why) => {
                    late |= matches!(why, Miss::Late(_));
                    tried.push(format!("{name}: {why}"));
                }
            }
        }
        if !late || Instant::now() >= until {
            return Err(format!("{} (tried {rounds} time(s))", tried.join("; ")));
        }
        // Namespaces that refuse at once would make this spin.
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node's namespace (None: the current one), then the ready servers'.
fn candidates(except: &str) -> Vec<(String, Option<PathBuf>)> {
    let mut list = vec![("the node".to_owned(), None)];
    let mut servers: Vec<Server> = std::fs::read_dir(SERVERS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| Server {
            name: e.file_name().to_string_lossy().into_owned(),
        })
        .filter(|s| s.name != except && s.is_ready())
        .collect();
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    list.extend(servers.into_iter().map(|s| {
        let netns = s.netns();
        (s.name, Some(netns))
    }));
    list
}

/// Ask rpcbind in that namespace for lockd's UDP port, then call NLM NULL.
fn ping_in(node_net: &File, netns: Option<&PathBuf>, until: Instant) -> Result<(), Miss> {
    let sock = socket_in(node_net, netns).map_err(Miss::Other)?;
    let rpcbind = SocketAddr::from((Ipv4Addr::LOCALHOST, 111));
    let port = call(
        &sock,
        rpcbind,
        [PMAP_PROG, 2, PMAP_GETPORT],
        &[NLM_PROG, NLM_VERS, IPPROTO_UDP, 0],
        until,
        "rpcbind",
    )?
    .first()
    .copied()
    .unwrap_or(0);
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(Miss::NotListening)?;
    let lockd = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    call(&sock, lockd, [NLM_PROG, NLM_VERS, 0], &[], until, "lockd").map(drop)
}

/// A UDP socket on the loopback of `netns` (a socket stays in the network
/// namespace it was made in, so the thread only visits it to make one).
fn socket_in(node_net: &File, netns: Option<&PathBuf>) -> Result<UdpSocket, String> {
    let Some(path) = netns else {
        return UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string());
    };
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering: {e}"))?;
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0));
    setns(node_net, CloneFlags::CLONE_NEWNET).map_err(|e| format!("coming back: {e}"))?;
    sock.map_err(|e| e.to_string())
}

/// One ONC RPC call (AUTH_NONE) and its accepted reply's results, as
/// big-endian words; resent every 100 ms until `until`. The socket is
/// connected to `to`, so a closed port fails at once. `who` names the
/// callee in the miss.
fn call(
    sock: &UdpSocket,
    to: SocketAddr,
    [prog, vers, proc]: [u32; 3],
    args: &[u32],
    until: Instant,
    who: &'static str,
) -> Result<Vec<u32>, Miss> {
    let other = |e: String| Miss::Other(format!("{who}: {e}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let xid = std::process::id() ^ (nanos << 2) ^ prog ^ proc;
    let mut msg = vec![xid, 0, 2, prog, vers, proc, 0, 0, 0, 0];
    msg.extend_from_slice(args);
    let bytes: Vec<u8> = msg.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut buf = [0u8; 512];
    sock.connect(to).map_err(|e| other(e.to_string()))?;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Miss::Late(who));
        }
        match sock.send(&bytes) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(Miss::Refused(who)),
            Err(e) => return Err(other(e.to_string())),
        }
        let wait = left.min(Duration::from_millis(100));
        sock.set_read_timeout(Some(wait))
            .map_err(|e| other(e.to_string()))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(Miss::Refused(who)),
            Err(e) => return Err(other(e.to_string())),
        };
        let words: Vec<u32> = buf[..n]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if words.first() != Some(&xid) {
            continue;
        }
        return accepted(&words).map_err(other);
    }
}

/// The results of an accepted, successful reply.
fn accepted(w: &[u32]) -> Result<Vec<u32>, String> {
    // xid, REPLY, MSG_ACCEPTED, verifier (flavor, length, body), status.
    if w.get(1) != Some(&1) || w.get(2) != Some(&0) {
        return Err("call refused".into());
    }
    let verf_words = w.get(4).map_or(0, |len| (*len as usize).div_ceil(4));
    let status = 5 + verf_words;
    match w.get(status) {
        Some(0) => Ok(w[status + 1..].to_vec()),
        Some(s) => Err(format!("accept status {s}")),
        None => Err("short reply".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{accepted, Miss};

    #[test]
    fn a_closed_port_is_refused_at_once() {
        // Loopback port 9 (discard) has no listener here: the kernel's
        // port-unreachable ends the call, well before its budget.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = std::time::Instant::now();
        let r = super::call(
            &sock,
            "127.0.0.1:9".parse().unwrap(),
            [100_000, 2, 3],
            &[],
            t + std::time::Duration::from_secs(5),
            "rpcbind",
        );
        assert!(matches!(r, Err(Miss::Refused("rpcbind"))), "{r:?}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn reads_an_accepted_reply() {
        assert_eq!(accepted(&[7, 1, 0, 0, 0, 0, 2049]), Ok(vec![2049]));
        assert_eq!(accepted(&[7, 1, 0, 1, 5, 9, 9, 0]), Ok(vec![]));
        assert!(accepted(&[7, 1, 1, 0]).is_err());
        assert!(accepted(&[7, 1, 0, 0, 0, 1]).is_err());
        assert!(accepted(&[7, 1, 0, 0, 0]).is_err());
    }
}
