//! AF_PACKET sockets for ARP. Neither std nor nix wraps a packet socket
//! bound to ETH_P_ARP, so this module holds the agent's only unsafe code:
//! three libc calls with plain-old-data arguments, and adopting a socket
//! handed down by the parent.
//!
//! Releasing a packet socket waits for an RCU grace period (10-20 ms), at
//! close or at exit. Start hands its socket to the background announcer,
//! so that the agent itself returns without paying it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ARP: u16 = 0x0806;

fn sockaddr(ifindex: u32, dest: [u8; 6]) -> libc::sockaddr_ll {
    let mut addr = [0u8; 8];
    addr[..6].copy_from_slice(&dest);
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ARP.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: addr,
    }
}

/// A datagram packet socket for ARP on one interface (non-blocking).
pub fn arp_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // Protocol 0 at creation, ETH_P_ARP at bind: a socket created with a
    // protocol is already hooked to every interface, and moving that hook
    // to one interface waits for an RCU grace period (10-20 ms here).
    // SAFETY: socket(2) takes only integers; a non-negative result is a new
    // descriptor that nothing else owns.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = sockaddr(ifindex, [0; 6]);
    // SAFETY: addr is a fully initialised sockaddr_ll and the length passed
    // is its size; fd is a valid socket.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Send one ARP payload to a link-layer destination.
pub fn send_to(fd: &OwnedFd, ifindex: u32, dest: [u8; 6], payload: &[u8]) -> io::Result<()> {
    let addr = sockaddr(ifindex, dest);
    // SAFETY: payload and addr are valid for the lengths given; fd is a
    // valid socket.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Adopt the ARP socket a parent passed at descriptor `raw`, after checking
/// that it is a packet socket.
pub fn inherited_arp_socket(raw: i32) -> io::Result<OwnedFd> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `domain`; a
    // descriptor that is not a socket only yields EBADF or ENOTSOCK.
    let rc = unsafe {
        libc::getsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            std::ptr::from_mut(&mut domain).cast(),
            &mut len,
        )
    };
    if rc != 0 || domain != libc::AF_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {raw} is not a packet socket"),
        ));
    }
    // SAFETY: the descriptor is open (getsockopt succeeded), is a packet
    // socket, and was handed to this process for this use alone.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
