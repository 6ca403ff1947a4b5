//! ARP for IPv4: RFC 5227 probes before an address is added, and
//! gratuitous ARPs after, so that peers point the address at this node.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::packet;
use crate::params::ArpSender;

/// The Ethernet broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// An Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// The 28-byte wire form.
    pub fn encode(&self) -> [u8; 28] {
        let mut b = [0u8; 28];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sha);
        b[14..18].copy_from_slice(&self.spa.octets());
        b[18..24].copy_from_slice(&self.tha);
        b[24..28].copy_from_slice(&self.tpa.octets());
        b
    }

    /// Parse an Ethernet/IPv4 ARP packet.
    pub fn decode(b: &[u8]) -> Option<Arp> {
        if b.len() < 28 || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let mac = |r: std::ops::Range<usize>| <[u8; 6]>::try_from(&b[r]).ok();
        let ip = |r: std::ops::Range<usize>| <[u8; 4]>::try_from(&b[r]).ok().map(Ipv4Addr::from);
        Some(Arp {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha: mac(8..14)?,
            spa: ip(14..18)?,
            tha: mac(18..24)?,
            tpa: ip(24..28)?,
        })
    }

    /// Whether this packet, seen while probing `ip` from `mac`, shows that
    /// another host uses the address (RFC 5227 section 2.1.1): it claims
    /// the address, or probes for it at the same time.
    pub fn conflicts(&self, ip: Ipv4Addr, mac: [u8; 6]) -> bool {
        self.sha != mac
            && (self.spa == ip || (self.op == 1 && self.spa.is_unspecified() && self.tpa == ip))
    }
}

/// Format a MAC address.
pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An ARP socket on one interface.
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
}

impl ArpSocket {
    /// Open it.
    pub fn open(ifindex: u32, mac: [u8; 6]) -> std::io::Result<Self> {
        Ok(Self {
            fd: packet::arp_socket(ifindex)?,
            ifindex,
            mac,
        })
    }

    /// The one a parent process passed down at descriptor `raw`.
    pub fn inherited(raw: i32, ifindex: u32, mac: [u8; 6]) -> std::io::Result<Self> {
        Ok(Self {
            fd: packet::inherited_arp_socket(raw)?,
            ifindex,
            mac,
        })
    }

    /// The socket, to hand to a child process.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    fn send(&self, arp: &Arp) -> std::io::Result<()> {
        packet::send_to(&self.fd, self.ifindex, BROADCAST, &arp.encode())
    }

    /// Probe for `ip` during `wait`, three probes spread over it; the MAC
    /// of a host that uses it, if one answers.
    pub fn probe(&self, ip: Ipv4Addr, wait: Duration) -> std::io::Result<Option<[u8; 6]>> {
        let spacing = (wait / 3).max(Duration::from_millis(10));
        let probe = Arp {
            op: 1,
            sha: self.mac,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: [0; 6],
            tpa: ip,
        };
        let end = Instant::now() + wait;
        let mut next = Instant::now();
        let mut buf = [0u8; 1500];
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(None);
            }
            if now >= next {
                self.send(&probe)?;
                next = now + spacing;
            }
            let until = next.min(end).saturating_duration_since(Instant::now());
            let ms = u16::try_from(until.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(ms))?;
            loop {
                match nix::unistd::read(&self.fd, &mut buf) {
                    Ok(n) => {
                        if let Some(a) = Arp::decode(&buf[..n]) {
                            if a.conflicts(ip, self.mac) {
                                return Ok(Some(a.sha));
                            }
                        }
                    }
                    Err(nix::errno::Errno::EAGAIN) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    /// One gratuitous ARP for `ip`.
    pub fn announce(&self, ip: Ipv4Addr, sender: ArpSender) -> std::io::Result<()> {
        let arp = match sender {
            ArpSender::Request => Arp {
                op: 1,
                sha: self.mac,
                spa: ip,
                tha: [0; 6],
                tpa: ip,
            },
            ArpSender::Reply => Arp {
                op: 2,
                sha: self.mac,
                spa: ip,
                tha: BROADCAST,
                tpa: ip,
            },
        };
        self.send(&arp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const OTHER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn round_trip() {
        let a = Arp {
            op: 2,
            sha: ME,
            spa: Ipv4Addr::new(192, 0, 2, 10),
            tha: BROADCAST,
            tpa: Ipv4Addr::new(192, 0, 2, 10),
        };
        assert_eq!(Arp::decode(&a.encode()), Some(a));
        assert_eq!(Arp::decode(&a.encode()[..20]), None);
        assert_eq!(mac_text(ME), "02:00:00:00:00:01");
    }

    #[test]
    fn conflicts_per_rfc_5227() {
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let reply = Arp {
            op: 2,
            sha: OTHER,
            spa: ip,
            tha: ME,
            tpa: Ipv4Addr::UNSPECIFIED,
        };
        assert!(reply.conflicts(ip, ME));
        let their_probe = Arp {
            op: 1,
            sha: OTHER,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: [0; 6],
            tpa: ip,
        };
        assert!(their_probe.conflicts(ip, ME));
        let our_probe = Arp {
            sha: ME,
            ..their_probe
        };
        assert!(!our_probe.conflicts(ip, ME));
        let unrelated = Arp {
            op: 1,
            sha: OTHER,
            spa: Ipv4Addr::new(192, 0, 2, 1),
            tha: [0; 6],
            tpa: Ipv4Addr::new(192, 0, 2, 2),
        };
        assert!(!unrelated.conflicts(ip, ME));
    }
}
