//! The kernel's view of links, addresses and routes, through rtnetlink.
//! Each method is one request (or one dump) on the action's connection
//! (rtnl::Rtnl, shared with nfs-server).

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope, CacheInfo,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;
use rtnl::Rtnl;

use crate::error::VipError;

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, for Ethernet-like links.
    pub mac: Option<[u8; 6]>,
    /// Administratively up.
    pub up: bool,
    /// Has carrier (IFF_LOWER_UP).
    pub carrier: bool,
    /// Speaks ARP (Ethernet and not IFF_NOARP).
    pub arp: bool,
    /// The loopback interface.
    pub loopback: bool,
}

/// An address on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub ip: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// IFA_F_* flags.
    pub flags: AddressFlags,
    /// IPv4 label.
    pub label: Option<String>,
}

impl Addr {
    /// Duplicate address detection failed for it.
    pub fn dad_failed(&self) -> bool {
        self.flags.contains(AddressFlags::Dadfailed)
    }

    /// Duplicate address detection is still running for it.
    pub fn tentative(&self) -> bool {
        self.flags.contains(AddressFlags::Tentative) && !self.dad_failed()
    }
}

/// A route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// Output interface.
    pub oif: Option<u32>,
    /// Directly connected (scope link).
    pub link_scope: bool,
}

/// What to add.
#[derive(Clone, Debug)]
pub struct NewAddr {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub ip: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// IPv4 broadcast, if any.
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// IPv4 label.
    pub label: Option<String>,
    /// IFA_F_* flags to set (nodad, noprefixroute).
    pub flags: AddressFlags,
    /// IPv6 preferred lifetime in seconds (u32::MAX is forever).
    pub preferred_lft: Option<u32>,
}

/// An open rtnetlink connection.
pub struct Netlink {
    nl: Rtnl,
}

impl From<rtnl::Error> for VipError {
    fn from(e: rtnl::Error) -> Self {
        VipError::Netlink(e.to_string())
    }
}

fn nl_err(what: &'static str) -> impl Fn(rtnetlink::Error) -> VipError {
    move |e| rtnl::failed(what)(e).into()
}

impl Netlink {
    /// Open a connection in the current network namespace.
    pub fn connect() -> Result<Self, VipError> {
        Ok(Self {
            nl: Rtnl::connect()?,
        })
    }

    fn link_from(msg: LinkMessage) -> Link {
        let mut name = String::new();
        let mut mac = None;
        for a in msg.attributes {
            match a {
                LinkAttribute::IfName(n) => name = n,
                LinkAttribute::Address(bytes) => {
                    if let Ok(m) = <[u8; 6]>::try_from(bytes.as_slice()) {
                        mac = Some(m);
                    }
                }
                _ => {}
            }
        }
        let f = msg.header.flags;
        let ether = msg.header.link_layer_type == LinkLayerType::Ether;
        Link {
            index: msg.header.index,
            name,
            mac: mac.filter(|_| ether),
            up: f.contains(LinkFlags::Up),
            carrier: f.contains(LinkFlags::LowerUp),
            arp: ether && !f.contains(LinkFlags::Noarp),
            loopback: f.contains(LinkFlags::Loopback),
        }
    }

    /// The link with this name, if it exists.
    pub fn link(&self, name: &str) -> Result<Option<Link>, VipError> {
        Ok(self.nl.link(name)?.map(Self::link_from))
    }

    /// The link with this index.
    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>, VipError> {
        Ok(self.nl.link_by_index(index)?.map(Self::link_from))
    }

    fn addr_from(msg: AddressMessage) -> Option<Addr> {
        let mut local = None;
        let mut address = None;
        let mut label = None;
        let mut flags = AddressFlags::from_bits_truncate(u32::from(msg.header.flags.bits()));
        for a in msg.attributes {
            match a {
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Address(ip) => address = Some(ip),
                AddressAttribute::Label(l) => label = Some(l),
                AddressAttribute::Flags(f) => flags = f,
                _ => {}
            }
        }
        Some(Addr {
            index: msg.header.index,
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the
            // peer's on point-to-point links.
            ip: local.or(address)?,
            prefix: msg.header.prefix_len,
            flags,
            label,
        })
    }

    /// Every address with this IP, on any interface.
    pub fn addresses_of(&self, ip: IpAddr) -> Result<Vec<Addr>, VipError> {
        let req = self
            .nl
            .handle()
            .address()
            .get()
            .set_address_filter(ip)
            .execute();
        let msgs: Vec<AddressMessage> = self
            .nl
            .run(req.try_collect())
            .map_err(nl_err("reading addresses"))?;
        Ok(msgs
            .into_iter()
            .filter_map(Self::addr_from)
            .filter(|a| a.ip == ip)
            .collect())
    }

    /// The routes of the main table for one family.
    pub fn routes(&self, v6: bool) -> Result<Vec<Route>, VipError> {
        let msg = if v6 {
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
        } else {
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
        };
        let req = self.nl.handle().route().get(msg).execute();
        let msgs: Vec<RouteMessage> = self
            .nl
            .run(req.try_collect())
            .map_err(nl_err("reading routes"))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.kind == RouteType::Unicast && m.header.table == 254)
            .filter_map(|m| {
                let mut dst = None;
                let mut oif = None;
                let mut table = u32::from(m.header.table);
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
                            dst = Some(IpAddr::V4(*v4))
                        }
                        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
                            dst = Some(IpAddr::V6(*v6))
                        }
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        RouteAttribute::Table(t) => table = *t,
                        _ => {}
                    }
                }
                let family = m.header.address_family;
                let default = if family == AddressFamily::Inet6 {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                };
                (table == 254).then_some(Route {
                    dst: dst.unwrap_or(default),
                    prefix: m.header.destination_prefix_length,
                    oif,
                    link_scope: m.header.scope == RouteScope::Link,
                })
            })
            .collect())
    }

    /// Add an address; fails if it exists.
    pub fn add_address(&self, a: &NewAddr) -> Result<(), VipError> {
        let mut req = self.nl.handle().address().add(a.index, a.ip, a.prefix);
        let m = req.message_mut();
        // The kernel refuses 127.0.0.0/8 (other than /32) in any scope but
        // host; ip(8) picks host for them too.
        if matches!(a.ip, IpAddr::V4(v4) if v4.is_loopback()) {
            m.header.scope = AddressScope::Host;
        }
        // The builder adds a /prefix broadcast by itself; this one decides.
        m.attributes
            .retain(|x| !matches!(x, AddressAttribute::Broadcast(_)));
        if let Some(b) = a.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &a.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        if !a.flags.is_empty() {
            m.attributes.push(AddressAttribute::Flags(a.flags));
        }
        if let Some(p) = a.preferred_lft {
            let mut info = CacheInfo::default();
            info.ifa_preferred = p;
            info.ifa_valid = u32::MAX;
            m.attributes.push(AddressAttribute::CacheInfo(info));
        }
        self.nl.run(req.execute()).map_err(|e| {
            if rtnl::is_errno(&e, libc::EEXIST) {
                VipError::Exists(a.ip)
            } else {
                nl_err("adding the address")(e)
            }
        })
    }

    /// Remove exactly this address (IP, prefix, interface).
    pub fn del_address(&self, a: &Addr) -> Result<(), VipError> {
        // By hand, not with rtnetlink's AddressMessageBuilder: that also
        // sets an IPv4 address's IFA_ADDRESS to the local one, and on a
        // point-to-point link (where IFA_ADDRESS is the peer's) the kernel
        // would match nothing, which stop takes for "already gone".
        let mut msg = AddressMessage::default();
        msg.header.family = if a.ip.is_ipv6() {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        msg.header.prefix_len = a.prefix;
        msg.header.index = a.index;
        msg.attributes.push(AddressAttribute::Local(a.ip));
        if a.ip.is_ipv6() {
            msg.attributes.push(AddressAttribute::Address(a.ip));
        }
        match self.nl.run(self.nl.handle().address().del(msg).execute()) {
            Ok(()) => Ok(()),
            // Already gone: what stop wanted.
            Err(e) if rtnl::is_errno(&e, libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) => Err(nl_err("removing the address")(e)),
        }
    }

    /// Set a link administratively up.
    pub fn set_up(&self, index: u32) -> Result<(), VipError> {
        Ok(self.nl.set_up(index)?)
    }
}
