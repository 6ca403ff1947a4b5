//! Telling peers where the address now lives: gratuitous ARPs (IPv4) and
//! unsolicited neighbour advertisements (IPv6), sent in the foreground or
//! by a detached copy of this binary (`vip --announce ...`, an
//! ocf::helper) so that start returns at once. Stop ends a running
//! announcer: a node that gave the address up must not keep claiming it.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use ocf::{Logger, StateFile};

use crate::arp::{mac_text, ArpSocket};
use crate::error::VipError;
use crate::ndisc;
use crate::params::ArpSender;

/// What to announce, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub ip: IpAddr,
    /// This node's MAC on that interface.
    pub mac: [u8; 6],
    /// Time between packets.
    pub interval: Duration,
    /// ARP request or reply (IPv4).
    pub sender: ArpSender,
}

enum Socket {
    Arp(ArpSocket),
    Icmp6(OwnedFd),
}

/// An open socket ready to announce.
pub struct Announcer {
    a: Announcement,
    sock: Socket,
}

impl Announcer {
    /// Use an ARP socket opened already (by the duplicate-address probe).
    pub fn with_arp(a: &Announcement, sock: ArpSocket) -> Self {
        Self {
            a: a.clone(),
            sock: Socket::Arp(sock),
        }
    }

    /// Open the socket the announcement needs.
    pub fn open(a: &Announcement) -> Result<Self, VipError> {
        let sock = match a.ip {
            IpAddr::V4(_) => Socket::Arp(ArpSocket::open(a.ifindex, a.mac).map_err(|source| {
                VipError::Socket {
                    what: "opening an ARP socket",
                    source,
                }
            })?),
            IpAddr::V6(_) => Socket::Icmp6(ndisc::socket6().map_err(|e| VipError::Socket {
                what: "opening an ICMPv6 socket",
                source: e.into(),
            })?),
        };
        Ok(Self { a: a.clone(), sock })
    }

    /// Send one packet.
    pub fn once(&self) -> Result<(), VipError> {
        let sent = match (&self.sock, self.a.ip) {
            (Socket::Arp(s), IpAddr::V4(v4)) => s.announce(v4, self.a.sender),
            (Socket::Icmp6(fd), IpAddr::V6(v6)) => {
                ndisc::advertise(fd, self.a.ifindex, v6, self.a.mac).map_err(std::io::Error::from)
            }
            _ => Ok(()),
        };
        sent.map_err(|source| VipError::Socket {
            what: "sending an announcement",
            source,
        })
    }

    /// Send `count` more packets, `interval` apart, the first after one
    /// interval (the caller sent one already).
    pub fn more(&self, count: u64) -> Result<(), VipError> {
        for _ in 0..count {
            std::thread::sleep(self.a.interval);
            self.once()?;
        }
        Ok(())
    }
}

/// The flag that makes this binary the detached announcer.
pub const FLAG: &str = "--announce";

/// End the announcer a previous start or monitor left running, if any.
pub fn stop_background(state: &StateFile, ip: IpAddr, log: &Logger) {
    if let Some(pid) = ocf::helper::stop(FLAG, state) {
        log.info(format!("stopped the announcer {pid} for {ip}"));
    }
}

/// Send `count` more packets from a detached process (an ocf::helper);
/// its PID goes to `state` for stop. An ARP socket is handed down rather
/// than closed here: releasing a packet socket costs an RCU grace period,
/// which the announcer then pays in the background.
pub fn spawn_background(announcer: Announcer, count: u64, state: &StateFile, log: &Logger) {
    let a = &announcer.a;
    let mut fd_arg = "-".to_owned();
    if let Socket::Arp(s) = &announcer.sock {
        // Inherited across exec at its number (the agent is single-threaded,
        // so no other spawn can inherit it meanwhile).
        let cleared = nix::fcntl::fcntl(
            s.fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
        if cleared.is_ok() {
            fd_arg = s.fd().as_raw_fd().to_string();
        }
    }
    let args = [
        a.ifindex.to_string(),
        a.ip.to_string(),
        mac_text(a.mac),
        count.to_string(),
        a.interval.as_millis().to_string(),
        match a.sender {
            ArpSender::Request => "request",
            ArpSender::Reply => "reply",
        }
        .to_owned(),
        fd_arg,
    ];
    if let Err(e) = ocf::helper::spawn(FLAG, &args, state) {
        log.warn(format!(
            "background announcer: {e}; the announcements it was to send may be missing"
        ));
    }
}

/// `vip --announce IFINDEX IP MAC COUNT INTERVAL_MS request|reply FD|-`:
/// the detached announcer. Returns the exit code.
pub fn child_main(args: &[String]) -> i32 {
    let parsed = (|| {
        let [ifindex, ip, mac, count, interval, sender, fd] = args else {
            return None;
        };
        let bytes: Vec<u8> = mac
            .split(':')
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .collect();
        Some((
            Announcement {
                ifindex: ifindex.parse().ok()?,
                ip: ip.parse().ok()?,
                mac: <[u8; 6]>::try_from(bytes.as_slice()).ok()?,
                interval: Duration::from_millis(interval.parse().ok()?),
                sender: if sender == "reply" {
                    ArpSender::Reply
                } else {
                    ArpSender::Request
                },
            },
            count.parse::<u64>().ok()?,
            fd.parse::<i32>().ok(),
        ))
    })();
    let Some((a, count, fd)) = parsed else {
        eprintln!("usage: vip --announce IFINDEX IP MAC COUNT INTERVAL_MS request|reply FD|-");
        return 2;
    };
    let announcer = match fd.map(|raw| ArpSocket::inherited(raw, a.ifindex, a.mac)) {
        Some(Ok(sock)) => Ok(Announcer::with_arp(&a, sock)),
        _ => Announcer::open(&a),
    };
    match announcer.and_then(|an| an.more(count)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("announcer: {e}");
            1
        }
    }
}
