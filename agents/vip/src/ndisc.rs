//! IPv6 neighbour discovery: unsolicited neighbour advertisements after an
//! address is added, and reading the advertisement that made duplicate
//! address detection fail, to name the host that owns the address.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, SockFlag, SockProtocol,
    SockType, SockaddrIn6,
};

const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
const OVERRIDE: u8 = 0x20;
const TARGET_LL_ADDR: u8 = 2;

/// A raw ICMPv6 socket, non-blocking, sending with hop limit 255 as
/// neighbour discovery requires.
pub fn socket6() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::IcmpV6,
    )?;
    setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)?;
    Ok(fd)
}

/// An unsolicited advertisement: `ip` is at `mac`, override caches.
pub fn encode_na(ip: Ipv6Addr, mac: [u8; 6]) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = NEIGHBOUR_ADVERTISEMENT;
    b[4] = OVERRIDE;
    b[8..24].copy_from_slice(&ip.octets());
    b[24] = TARGET_LL_ADDR;
    b[25] = 1; // length in units of 8 bytes
    b[26..32].copy_from_slice(&mac);
    b
}

/// The target and target link-layer address of a neighbour advertisement.
pub fn decode_na(b: &[u8]) -> Option<(Ipv6Addr, Option<[u8; 6]>)> {
    if b.len() < 24 || b[0] != NEIGHBOUR_ADVERTISEMENT || b[1] != 0 {
        return None;
    }
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).ok()?);
    let mut opts = &b[24..];
    let mut lladdr = None;
    while opts.len() >= 8 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            break;
        }
        if opts[0] == TARGET_LL_ADDR && len >= 8 {
            lladdr = <[u8; 6]>::try_from(&opts[2..8]).ok();
        }
        opts = &opts[len..];
    }
    Some((target, lladdr))
}

/// Send one unsolicited advertisement to all nodes on the interface.
pub fn advertise(fd: &OwnedFd, ifindex: u32, ip: Ipv6Addr, mac: [u8; 6]) -> nix::Result<()> {
    let all_nodes = SockaddrIn6::from(SocketAddrV6::new(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        0,
        0,
        ifindex,
    ));
    sendto(
        fd.as_raw_fd(),
        &encode_na(ip, mac),
        &all_nodes,
        MsgFlags::empty(),
    )
    .map(|_| ())
}

/// The link-layer address another host advertised for `ip`, from what the
/// socket has queued.
pub fn advertised_owner(fd: &OwnedFd, ip: Ipv6Addr, mine: Option<[u8; 6]>) -> Option<[u8; 6]> {
    let mut buf = [0u8; 1500];
    while let Ok(n) = recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        if let Some((target, Some(mac))) = decode_na(&buf[..n]) {
            if target == ip && Some(mac) != mine {
                return Some(mac);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_round_trip() {
        let ip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let mac = [2, 0, 0, 0, 0, 9];
        let na = encode_na(ip, mac);
        assert_eq!(na[4] & OVERRIDE, OVERRIDE);
        assert_eq!(decode_na(&na), Some((ip, Some(mac))));
        assert_eq!(decode_na(&na[..24]), Some((ip, None)));
        assert_eq!(decode_na(&[135; 32]), None);
    }
}
