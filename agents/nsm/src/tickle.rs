//! Tickle ACKs: after an address moved, its clients' TCP connections are
//! dead, but a client finds out only on its own back-off (seconds; a
//! minute when idle). The taking node sends each recorded connection an
//! ACK with sequence numbers 0 from the server's address and port; the
//! client answers with its real sequence, the new node's kernel knows no
//! such connection and resets it, and the client reconnects at once (what
//! CTDB and ClusterLabs' portblock do). Linux answers an out-of-window ACK
//! at most once per 500 ms per socket (tcp_invalid_ratelimit): a round is
//! sent [`ROUNDS`] times, [`SPACING`] apart.
//!
//! The connections are recorded on the export, beside statd's records, so
//! that they move with it: at each monitor and at stop, the stop adding
//! what vip saw as it removed the address ([`Departed`]). nfs-server records
//! and tickles those of a virtual server, nlm-locks those of a node-wide
//! one; both through [`refresh`] and [`send_rounds`].

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{
    bind, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrStorage,
};
use procfs::net::TcpNetEntry;

/// The record, in the server's state directory.
const RECORD: &str = "handoff-tcp-clients";

/// How many times a round of tickles is sent.
pub const ROUNDS: usize = 3;
/// Between rounds: past Linux's 500 ms limit on answering them.
pub const SPACING: Duration = Duration::from_millis(600);

/// One client connection: the server's end and the client's.
#[derive(
    serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub struct Conn {
    /// The server's address and port.
    pub server: SocketAddr,
    /// The client's.
    pub client: SocketAddr,
}

/// The TCP socket table of this network namespace (IPv4 and IPv6).
pub fn tcp_table() -> Vec<TcpNetEntry> {
    [procfs::net::tcp(), procfs::net::tcp6()]
        .into_iter()
        .flat_map(Result::unwrap_or_default)
        .collect()
}

/// The client connections to `ip` in `table`: established, and those the
/// server is closing (nfsd closes its connections to an address when the
/// address goes, but the FIN cannot leave without it: the client still
/// believes them open).
pub fn connections<'a>(ip: IpAddr, table: impl IntoIterator<Item = &'a TcpNetEntry>) -> Vec<Conn> {
    let mut all: Vec<Conn> = table
        .into_iter()
        .filter(|e| {
            use procfs::net::TcpState::*;
            matches!(
                e.state,
                Established | CloseWait | FinWait1 | FinWait2 | Closing | LastAck
            ) && same_ip(e.local_address.ip(), ip)
        })
        .map(|e| Conn {
            server: SocketAddr::new(ip, e.local_address.port()),
            client: SocketAddr::new(canonical(e.remote_address.ip()), e.remote_address.port()),
        })
        .collect();
    all.sort();
    all.dedup();
    all
}

/// An IPv4 address seen through an IPv6 socket (::ffff:a.b.c.d) as itself.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// Record `conns` in `state_dir`, unless the record already says so (a
/// monitor every few seconds should not write the disk each time).
/// Returns whether it wrote.
pub fn record(state_dir: &Path, conns: &[Conn]) -> std::io::Result<bool> {
    let path = state_dir.join(RECORD);
    let text = serde_json::to_vec(conns)?;
    if std::fs::read(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    crate::replace_durably(state_dir, RECORD, &text)?;
    Ok(true)
}

/// What a record of the clients becomes.
#[derive(Clone, Copy, Debug)]
pub enum Update<'a> {
    /// A monitor: what the table shows now, in place of the last record.
    Replace,
    /// A stop: the last record, plus what the table still shows, plus
    /// what vip saw as it removed the address ([`Departed`]).
    Merge(&'a [Conn]),
}

/// Record the client connections to `ip` that this network namespace's
/// TCP table shows, in `state_dir`, as `update` says. Returns how many it
/// recorded when the record changed, None when it did not.
pub fn refresh(state_dir: &Path, ip: IpAddr, update: Update) -> std::io::Result<Option<usize>> {
    let mut conns = connections(ip, &tcp_table());
    if let Update::Merge(departed) = update {
        conns = union(&union(&recorded(state_dir), &conns), departed);
    }
    Ok(record(state_dir, &conns)?.then_some(conns.len()))
}

/// [`refresh`], saying in `log` what it recorded (an agent's monitor and
/// stop).
pub fn keep(log: &ocf::Logger, state_dir: &Path, ip: IpAddr, update: Update) {
    match refresh(state_dir, ip, update) {
        Ok(Some(0)) => log.debug(format!("no client connection to {ip} to record")),
        Ok(Some(n)) => log.info(format!(
            "recorded {n} client connection(s) to {ip} on the export, to tickle after a move"
        )),
        Ok(None) => {}
        Err(e) => log.warn(format!(
            "cannot record the clients' connections on the export ({e}): after a move they reconnect on their own back-off"
        )),
    }
}

/// The connections to an address that vip saw as it removed it, left on
/// this node (`HA_RSCTMP`) for the stop of the server behind it. In a
/// group vip stops first and the server's kernel closes its connections
/// as the address goes, so without this a stop would find none and a
/// client that connected since the last monitor would not be tickled.
pub struct Departed(ocf::StateFile);

impl Departed {
    /// The note for `ip` in `dir`.
    pub fn new(dir: &Path, ip: IpAddr) -> Self {
        Self(ocf::StateFile::new(
            dir,
            "handoff",
            "departed",
            &canonical(ip).to_string(),
            "tcp",
        ))
    }

    /// vip, before it removes the address: the connections to it in this
    /// network namespace (no note when there are none).
    pub fn note(&self, ip: IpAddr) -> std::io::Result<usize> {
        let conns = connections(ip, &tcp_table());
        if conns.is_empty() {
            self.0.remove()?;
        } else {
            self.0.write(&serde_json::to_vec(&conns)?)?;
        }
        Ok(conns.len())
    }

    /// The server's stop: the noted connections, the note removed (a
    /// stop that fails after this still has the monitor's record).
    pub fn take(&self) -> Vec<Conn> {
        let conns = self
            .0
            .read()
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let _ = self.0.remove();
        conns
    }
}

/// `a` and `b` together, each connection once.
pub fn union(a: &[Conn], b: &[Conn]) -> Vec<Conn> {
    let mut all: Vec<Conn> = a.iter().chain(b).copied().collect();
    all.sort();
    all.dedup();
    all
}

/// The recorded connections (none if there is no record).
pub fn recorded(state_dir: &Path) -> Vec<Conn> {
    std::fs::read(state_dir.join(RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The TCP header of a tickle: ACK, sequence and acknowledgement 0, with
/// its checksum over the pseudo-header of `c`.
pub fn encode(c: &Conn) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0..2].copy_from_slice(&c.server.port().to_be_bytes());
    h[2..4].copy_from_slice(&c.client.port().to_be_bytes());
    // Sequence and acknowledgement numbers stay 0.
    h[12] = 5 << 4; // header length: 5 words
    h[13] = 0x10; // ACK
    h[14..16].copy_from_slice(&1234u16.to_be_bytes()); // window
    let sum = checksum(&pseudo_header(c), &h);
    h[16..18].copy_from_slice(&sum.to_be_bytes());
    h
}

fn pseudo_header(c: &Conn) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    match (c.server.ip(), c.client.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend(s.octets());
            p.extend(d.octets());
            p.extend([0, 6, 0, 20]);
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            };
            p.extend(v6(s));
            p.extend(v6(d));
            p.extend([0, 0, 0, 20, 0, 0, 0, 6]);
        }
    }
    p
}

/// The Internet checksum of `a` then `b` (both of even length).
fn checksum(a: &[u8], b: &[u8]) -> u16 {
    let mut sum: u32 = a
        .chunks(2)
        .chain(b.chunks(2))
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Send one tickle to each of `conns` through raw TCP sockets bound to
/// their server addresses (the kernel adds the IP header); how many went.
pub fn send(conns: &[Conn]) -> Result<usize, String> {
    let mut sent = 0;
    let mut last_err = None;
    for c in conns {
        let family = match c.server {
            SocketAddr::V4(_) => AddressFamily::Inet,
            SocketAddr::V6(_) => AddressFamily::Inet6,
        };
        let fd = socket(
            family,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::Tcp,
        )
        .map_err(|e| format!("raw TCP socket: {e}"))?;
        let from = SockaddrStorage::from(SocketAddr::new(c.server.ip(), 0));
        let to = SockaddrStorage::from(SocketAddr::new(c.client.ip(), 0));
        let r = bind(fd.as_raw_fd(), &from)
            .and_then(|_| sendto(fd.as_raw_fd(), &encode(c), &to, MsgFlags::empty()));
        match r {
            Ok(_) => sent += 1,
            Err(e) => last_err = Some(format!("{} to {}: {e}", c.server, c.client)),
        }
    }
    match (sent, last_err) {
        (0, Some(e)) => Err(e),
        _ => Ok(sent),
    }
}

/// Tickles under way: the first round was sent, the others follow from a
/// thread.
pub struct Rounds {
    /// How many the first round reached.
    pub first: usize,
    /// How many connections are tickled.
    pub of: usize,
    rest: std::thread::JoinHandle<()>,
}

impl Rounds {
    /// Wait for the last round (a process that exits earlier takes them
    /// with it).
    pub fn wait(self) {
        let _ = self.rest.join();
    }
}

/// Tickle the connections of `conns` to `ip`: the first round now, the
/// other [`ROUNDS`] - 1 from a thread, [`SPACING`] apart, so that the
/// caller need not wait (the thread is in the caller's network
/// namespace). None when no connection is to `ip`.
pub fn send_rounds(ip: IpAddr, conns: &[Conn]) -> Result<Option<Rounds>, String> {
    let conns: Vec<Conn> = conns
        .iter()
        .filter(|c| same_ip(c.server.ip(), ip))
        .copied()
        .collect();
    if conns.is_empty() {
        return Ok(None);
    }
    let first = send(&conns)?;
    let of = conns.len();
    let rest = std::thread::spawn(move || {
        for _ in 1..ROUNDS {
            std::thread::sleep(SPACING);
            // A round that fails is followed by the next; the first said
            // whether sending works at all.
            let _ = send(&conns);
        }
    });
    Ok(Some(Rounds { first, of, rest }))
}

/// [`send_rounds`], saying in `log` what went (a helper, once `ip` is up
/// on the taking node).
pub fn start(log: &ocf::Logger, ip: IpAddr, conns: &[Conn]) -> Option<Rounds> {
    match send_rounds(ip, conns) {
        Ok(Some(r)) => {
            log.info(format!(
                "tickled {} of {} recorded client connection(s) to {ip}; {} more round(s) follow {} ms apart",
                r.first,
                r.of,
                ROUNDS - 1,
                SPACING.as_millis()
            ));
            Some(r)
        }
        Ok(None) => None,
        Err(why) => {
            log.warn(format!(
                "cannot tickle the clients' connections ({why}): they reconnect on their own back-off"
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tickle_is_an_ack_with_zero_sequence_and_a_valid_checksum() {
        let c = Conn {
            server: "192.0.2.100:2049".parse().unwrap(),
            client: "192.0.2.50:812".parse().unwrap(),
        };
        let h = encode(&c);
        assert_eq!(u16::from_be_bytes([h[0], h[1]]), 2049);
        assert_eq!(u16::from_be_bytes([h[2], h[3]]), 812);
        assert_eq!(&h[4..12], &[0u8; 8]);
        assert_eq!(h[13], 0x10);
        // A header with its checksum sums to 0 with the pseudo-header.
        assert_eq!(checksum(&pseudo_header(&c), &h), 0);
        let c6 = Conn {
            server: "[2001:db8::100]:2049".parse().unwrap(),
            client: "[2001:db8::50]:700".parse().unwrap(),
        };
        assert_eq!(checksum(&pseudo_header(&c6), &encode(&c6)), 0);
    }

    #[test]
    fn mapped_addresses_are_their_ipv4_selves() {
        let m: IpAddr = "::ffff:192.0.2.50".parse().unwrap();
        assert_eq!(canonical(m), "192.0.2.50".parse::<IpAddr>().unwrap());
        assert!(same_ip(m, "192.0.2.50".parse().unwrap()));
    }

    #[test]
    fn the_record_is_written_once_per_change() {
        let dir = std::env::temp_dir().join(format!("tickle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = vec![Conn {
            server: "192.0.2.100:2049".parse().unwrap(),
            client: "192.0.2.50:812".parse().unwrap(),
        }];
        assert!(record(&dir, &c).unwrap());
        assert!(!record(&dir, &c).unwrap());
        assert_eq!(recorded(&dir), c);
        assert!(record(&dir, &[]).unwrap());
        assert!(recorded(&dir).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refresh_records_this_namespaces_connections_and_merges_at_stop() {
        let dir = std::env::temp_dir().join(format!("tickle-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(refresh(&dir, lo, Update::Replace).unwrap().is_some());
        let conn = Conn {
            server: SocketAddr::new(lo, port),
            client: peer,
        };
        assert!(recorded(&dir).contains(&conn));
        // Unchanged: not written again.
        assert_eq!(refresh(&dir, lo, Update::Replace).unwrap(), None);
        // A stop that finds other connections keeps the last record's.
        let gone = Conn {
            server: "127.0.0.1:2049".parse().unwrap(),
            client: "127.0.0.1:700".parse().unwrap(),
        };
        record(&dir, &[gone]).unwrap();
        let departed = Conn {
            server: "127.0.0.1:2049".parse().unwrap(),
            client: "127.0.0.1:701".parse().unwrap(),
        };
        refresh(&dir, lo, Update::Merge(&[departed])).unwrap();
        let merged = recorded(&dir);
        assert!(merged.contains(&gone) && merged.contains(&conn) && merged.contains(&departed));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_vip_notes_the_stop_takes_once() {
        let dir = std::env::temp_dir().join(format!("tickle-departed-{}", std::process::id()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let note = Departed::new(&dir, lo);
        assert!(note.note(lo).unwrap() >= 1);
        let conn = Conn {
            server: SocketAddr::new(lo, port),
            client: peer,
        };
        assert!(note.take().contains(&conn));
        assert!(note.take().is_empty(), "taken once");
        // An address without connections leaves no note behind.
        let none: IpAddr = "192.0.2.77".parse().unwrap();
        let empty = Departed::new(&dir, none);
        assert_eq!(empty.note(none).unwrap(), 0);
        assert!(!empty.0.path().exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_connections_to_the_address_are_tickled() {
        let c = Conn {
            server: "192.0.2.100:2049".parse().unwrap(),
            client: "192.0.2.50:812".parse().unwrap(),
        };
        assert!(send_rounds("192.0.2.101".parse().unwrap(), &[c])
            .unwrap()
            .is_none());
        assert!(send_rounds("192.0.2.100".parse().unwrap(), &[])
            .unwrap()
            .is_none());
    }

    proptest::proptest! {
        #[test]
        fn recorded_connections_read_back(
            conns in proptest::collection::vec(
                proptest::prelude::any::<((IpAddr, u16), (IpAddr, u16))>(),
                0..8,
            ),
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            // As the TCP table gives them: no IPv6 flow label or scope, which
            // the record (an address as text) would not keep.
            let conns: Vec<Conn> = conns
                .into_iter()
                .map(|(server, client)| Conn { server: server.into(), client: client.into() })
                .collect();
            let dir = std::env::temp_dir().join(format!("nsm-tickle-any-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            // Whatever the file holds, reading it does not panic.
            let _ = std::fs::write(dir.join(RECORD), &junk);
            let _ = recorded(&dir);
            let _ = std::fs::remove_file(dir.join(RECORD));
            proptest::prop_assert_eq!(record(&dir, &conns).ok(), Some(true));
            proptest::prop_assert_eq!(recorded(&dir), conns);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
