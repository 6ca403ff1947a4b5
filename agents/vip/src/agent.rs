//! ocf:handoff:vip — the `Agent` implementation: what each action does,
//! in terms of the modules beside it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Facts, OcfError};
use rtnetlink::packet_route::address::AddressFlags;

use crate::announce::{self, Announcement, Announcer};
use crate::arp::{mac_text, ArpSocket};
use crate::error::VipError;
use crate::netlink::{Addr, Link, Netlink, NewAddr};
use crate::params::{Broadcast, Lifetime, VipParams};
use crate::{findif, ndisc, netns};

/// The agent.
pub struct Vip;

const INFO: AgentInfo = AgentInfo {
    provider: "handoff",
    name: "vip",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Virtual IPv4/IPv6 address of one NFS export",
    longdesc: "Adds one virtual IPv4 or IPv6 address to an interface, as the last member of an \
export group (fs, nlm-locks, export, vip), and announces it so that clients follow it to this \
node. Everything goes through netlink and the agent's own packet sockets: no ip, arping or \
send_arp is run, and a monitor costs about a millisecond.\n\n\
Before it adds an IPv4 address, start sends RFC 5227 ARP probes and refuses the address if \
another host answers, naming that host's MAC; for IPv6 the kernel's duplicate address detection \
plays that part, and an address it marks dadfailed is removed again. Announcements are gratuitous \
ARPs (IPv4) or unsolicited neighbour advertisements (IPv6), the first sent before start returns \
and the rest in the background when arp_bg is set. Stop removes exactly this address from \
exactly this interface, and stops any announcer still running. Just before, it notes the TCP \
connections to the address in HA_RSCTMP, for the NFS server's stop (nfs-server, nlm-locks) to \
record on the export: once the address is gone the server's kernel closes them, and the taking \
node tickles the clients from that record.\n\n\
Monitor checks that the address is on the interface with its prefix, that the link is up and has \
carrier, and that the address is not marked dadfailed.",
    actions: &[
        ActionSpec::new(Action::Start, 20),
        ActionSpec::new(Action::Stop, 20),
        ActionSpec::monitor(10, 20, 0),
        ActionSpec::new(Action::ValidateAll, 20),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::Reload, 20),
    ],
    example: "pcs resource create export_a_vip ocf:handoff:vip ip=192.0.2.100 cidr_netmask=24 \\\n    op monitor interval=10s timeout=20s --group export_a",
};

/// Where the address goes, once decided.
struct Place {
    link: Link,
    prefix: u8,
}

/// Checks between parameters that need no system state.
fn check_family(p: &VipParams) -> Result<(), VipError> {
    let ip = p.ip.0;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if let Some(c) = p.cidr_netmask {
        if c.len > max || (c.dotted && ip.is_ipv6()) {
            return Err(VipError::Family(format!(
                "cidr_netmask={} does not fit {ip}: an {} prefix is 1 to {max}",
                c.len,
                if ip.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
    }
    if ip.is_ipv6() {
        if p.broadcast.is_some() {
            return Err(VipError::Family(
                "broadcast is for IPv4 addresses; remove it for an IPv6 address".into(),
            ));
        }
        if p.iflabel.is_some() || p.nic.as_ref().is_some_and(|n| n.label.is_some()) {
            return Err(VipError::Family(
                "labels (iflabel, nic=name:label) are for IPv4 addresses only".into(),
            ));
        }
        if let IpAddr::V6(v6) = ip {
            if v6.segments()[0] & 0xffc0 == 0xfe80 && p.nic.is_none() {
                return Err(VipError::Family(format!("{ip} is link-local: set nic")));
            }
        }
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_loopback() && p.nic.is_none() {
            return Err(VipError::Family(format!(
                "{ip} is a loopback address: set nic=lo to put it on the loopback interface"
            )));
        }
    }
    if let (Some(nic), Some(label)) = (&p.nic, label(p)) {
        if nic.name.len() + 1 + label.len() > 15 {
            return Err(VipError::Family(format!(
                "the label {}:{label} is longer than the kernel's 15 characters",
                nic.name
            )));
        }
    }
    Ok(())
}

/// The IPv4 label: iflabel, or the deprecated nic=name:label.
fn label(p: &VipParams) -> Option<String> {
    p.iflabel
        .as_ref()
        .map(|l| l.0.clone())
        .or_else(|| p.nic.as_ref().and_then(|n| n.label.clone()))
}

fn broadcast(p: &VipParams, prefix: u8) -> Option<Ipv4Addr> {
    let IpAddr::V4(v4) = p.ip.0 else { return None };
    let host = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
    match p.broadcast {
        Some(Broadcast::Addr(a)) => Some(a),
        Some(Broadcast::Minus) => Some(Ipv4Addr::from(u32::from(v4) & !host)),
        // Unset: like +, where a broadcast address exists.
        Some(Broadcast::Plus) | None if prefix < 31 => Some(Ipv4Addr::from(u32::from(v4) | host)),
        _ => None,
    }
}

fn enter_netns(p: &VipParams) -> Result<(), VipError> {
    match &p.network_namespace {
        Some(ns) => netns::enter(&ns.0),
        None => Ok(()),
    }
}

/// The interface and prefix for the address.
fn place(nl: &Netlink, p: &VipParams) -> Result<Place, VipError> {
    let nic = match &p.nic {
        Some(n) => Some(
            nl.link(&n.name)?
                .ok_or_else(|| VipError::NoSuchNic(n.name.clone()))?,
        ),
        None => None,
    };
    let prefix = p.cidr_netmask.map(|c| c.len);
    let loopback = matches!(p.ip.0, IpAddr::V4(v4) if v4.is_loopback());
    if let Some(l) = nic.as_ref().filter(|l| loopback && !l.loopback) {
        return Err(VipError::Family(format!(
            "{} is a loopback address and {} is not the loopback interface; set nic=lo",
            p.ip.0, l.name
        )));
    }
    let (index, prefix) = match (&nic, prefix) {
        (Some(l), Some(pl)) => (l.index, pl),
        // The local table's 127.0.0.0/8 on lo, as IPaddr2 finds it.
        (Some(l), None) if loopback => (l.index, 8),
        _ => {
            let routes = nl.routes(p.ip.0.is_ipv6())?;
            let name = |i: u32| {
                nl.link_by_index(i)
                    .ok()
                    .flatten()
                    .map(|l| l.name)
                    .unwrap_or_else(|| format!("interface {i}"))
            };
            findif::choose(p.ip.0, nic.as_ref().map(|l| l.index), prefix, &routes, name)?
        }
    };
    let link = match nic {
        Some(l) => l,
        None => nl
            .link_by_index(index)?
            .ok_or_else(|| VipError::NoSuchNic(format!("index {index}")))?,
    };
    Ok(Place { link, prefix })
}

/// The interface recorded at start, else the configured or routed one;
/// None when none can be found (stop then looks everywhere).
fn recorded_place(ctx: &Ctx, nl: &Netlink, p: &VipParams) -> Option<Place> {
    if let Some((nic, prefix)) = recorded(ctx) {
        if let Ok(Some(link)) = nl.link(&nic) {
            return Some(Place { link, prefix });
        }
    }
    place(nl, p).ok()
}

/// What start records: where the address went.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    nic: String,
    prefix: u8,
}

/// The interface and prefix start recorded.
fn recorded(ctx: &Ctx) -> Option<(String, u8)> {
    let bytes = ctx.state("vip").read().ok()??;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    Some((r.nic, r.prefix))
}

fn ipv6_disabled(nic: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{nic}/disable_ipv6"))
        .is_ok_and(|v| v.trim() == "1")
}

fn announcement(p: &VipParams, place: &Place) -> Option<Announcement> {
    // Nobody to tell on a link without ARP or neighbour discovery (lo).
    if !place.link.arp {
        return None;
    }
    Some(Announcement {
        ifindex: place.link.index,
        ip: p.ip.0,
        mac: place.link.mac?,
        interval: Duration::from_millis(p.arp_interval.0),
        sender: p.arp_sender,
    })
}

/// Send `count` announcements: the first now, the rest in the background
/// or here, as arp_bg says. `sock` is the probe's ARP socket, if any.
fn announce(
    ctx: &Ctx,
    p: &VipParams,
    place: &Place,
    count: u64,
    sock: Option<ArpSocket>,
) -> Result<(), VipError> {
    let Some(a) = announcement(p, place) else {
        return Ok(());
    };
    if count == 0 {
        return Ok(());
    }
    let state = ctx.state("announcer");
    announce::stop_background(&state, p.ip.0, &ctx.log);
    let announcer = match sock {
        Some(s) => Announcer::with_arp(&a, s),
        None => Announcer::open(&a)?,
    };
    announcer.once()?;
    let background = p.arp_bg.unwrap_or(p.ip.0.is_ipv4());
    if count > 1 {
        if background {
            announce::spawn_background(announcer, count - 1, &state, &ctx.log);
        } else {
            announcer.more(count - 1)?;
        }
    }
    Ok(())
}

/// Wait for the kernel's duplicate address detection on a new IPv6 address.
fn wait_for_dad(
    ctx: &Ctx,
    nl: &Netlink,
    p: &VipParams,
    place: &Place,
    listener: Option<&std::os::fd::OwnedFd>,
) -> Result<(), VipError> {
    loop {
        let now = nl
            .addresses_of(p.ip.0)?
            .into_iter()
            .find(|a| a.index == place.link.index && a.prefix == place.prefix);
        match now {
            Some(a) if a.dad_failed() => {
                let owner = listener
                    .and_then(|fd| match p.ip.0 {
                        IpAddr::V6(v6) => ndisc::advertised_owner(fd, v6, place.link.mac),
                        IpAddr::V4(_) => None,
                    })
                    .map(|m| format!(" by {}", mac_text(m)))
                    .unwrap_or_default();
                nl.del_address(&a)?;
                return Err(VipError::DadFailed {
                    ip: p.ip.0,
                    nic: place.link.name.clone(),
                    by: owner,
                });
            }
            Some(a) if a.tentative() => {
                if ctx.deadline.expired() {
                    nl.del_address(&a)?;
                    return Err(VipError::DadTimeout {
                        ip: p.ip.0,
                        nic: place.link.name.clone(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return Ok(()),
        }
    }
}

/// Before the address goes: note its TCP clients on this node for the
/// stop of the NFS server behind it (nfs-server, nlm-locks), which records
/// them on the export for the taking node to tickle. Once the address is
/// gone the server's kernel closes them and nothing would be left to see.
fn note_departing(ctx: &Ctx, ip: IpAddr) {
    match nsm::tickle::Departed::new(&ctx.state_dir, ip).note(ip) {
        Ok(0) => {}
        Ok(n) => ctx.log.info(format!(
            "noted {n} client connection(s) to {ip} for the server's stop to record"
        )),
        Err(e) => ctx.log.warn(format!(
            "cannot note the client connections to {ip} ({e}): those since the server's last monitor reconnect on their own back-off after the move"
        )),
    }
}

impl Agent for Vip {
    type Params = VipParams;
    const INFO: AgentInfo = INFO;

    fn validate(&self, _ctx: &Ctx, p: &VipParams) -> ocf::Result<()> {
        check_family(p)?;
        enter_netns(p)?;
        let nl = Netlink::connect()?;
        let place = place(&nl, p)?;
        if p.ip.0.is_ipv6() && ipv6_disabled(&place.link.name) {
            return Err(VipError::NoIpv6(place.link.name).into());
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx, p: &VipParams) -> ocf::Result<()> {
        enter_netns(p)?;
        let nl = Netlink::connect()?;
        let place = place(&nl, p)?;
        let ip = p.ip.0;
        for a in nl.addresses_of(ip)? {
            if a.index == place.link.index && a.prefix == place.prefix && !a.dad_failed() {
                ctx.log.info(format!(
                    "{ip}/{} is already on {}",
                    a.prefix, place.link.name
                ));
                return Ok(());
            }
            if a.index == place.link.index && a.dad_failed() {
                ctx.log.warn(format!(
                    "removing {ip} left dadfailed on {} by an earlier start",
                    place.link.name
                ));
                nl.del_address(&a)?;
                continue;
            }
            let other = nl
                .link_by_index(a.index)?
                .map(|l| l.name)
                .unwrap_or_default();
            return Err(VipError::Elsewhere {
                ip,
                nic: place.link.name.clone(),
                other: format!("{other}/{}", a.prefix),
            }
            .into());
        }
        if !place.link.up {
            ctx.log.info(format!("bringing {} up", place.link.name));
            nl.set_up(place.link.index)?;
        }
        // One ARP socket serves the probe and the announcements.
        let mut arp_sock = None;
        if let (IpAddr::V4(v4), true, Some(mac)) = (ip, place.link.arp, place.link.mac) {
            let sock =
                ArpSocket::open(place.link.index, mac).map_err(|source| VipError::Socket {
                    what: "opening an ARP socket",
                    source,
                })?;
            if p.duplicate_check {
                let owner =
                    sock.probe(v4, p.duplicate_wait.0)
                        .map_err(|source| VipError::Socket {
                            what: "probing with ARP",
                            source,
                        })?;
                if let Some(owner) = owner {
                    return Err(VipError::InUse {
                        ip,
                        nic: place.link.name.clone(),
                        mac: mac_text(owner),
                    }
                    .into());
                }
            }
            arp_sock = Some(sock);
        }
        // Listen for the advertisement that would make DAD fail, to name
        // the host behind it.
        let dad = ip.is_ipv6() && !p.nodad;
        let listener = if dad { ndisc::socket6().ok() } else { None };
        let mut flags = AddressFlags::empty();
        if p.noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        if ip.is_ipv6() && p.nodad {
            flags |= AddressFlags::Nodad;
        }
        let new = NewAddr {
            index: place.link.index,
            ip,
            prefix: place.prefix,
            broadcast: broadcast(p, place.prefix),
            label: label(p).map(|l| format!("{}:{l}", place.link.name)),
            flags,
            preferred_lft: ip.is_ipv6().then_some(match p.preferred_lft {
                Lifetime::Forever => u32::MAX,
                Lifetime::Secs(s) => s,
            }),
        };
        nl.add_address(&new)?;
        if let Some(c) = p.cidr_netmask.filter(|c| c.dotted) {
            ctx.log.warn(format!(
                "cidr_netmask is a dotted netmask; write {} instead",
                c.len
            ));
        }
        ctx.log.info(format!(
            "added {ip}/{} to {}{}",
            place.prefix,
            place.link.name,
            new.broadcast
                .map(|b| format!(" brd {b}"))
                .unwrap_or_default()
        ));
        let record = Record {
            nic: place.link.name.clone(),
            prefix: place.prefix,
        };
        if let Err(e) = ctx
            .state("vip")
            .write(&serde_json::to_vec(&record).unwrap_or_default())
        {
            ctx.log
                .warn(format!("cannot record where {ip} was added: {e}"));
        }
        if dad {
            wait_for_dad(ctx, &nl, p, &place, listener.as_ref())?;
        }
        announce(ctx, p, &place, p.arp_count.0, arp_sock)?;
        Ok(())
    }

    fn stop(&self, ctx: &Ctx, p: &VipParams) -> ocf::Result<()> {
        let ip = p.ip.0;
        match enter_netns(p) {
            Err(VipError::NoNetns(ns)) => {
                ctx.log
                    .info(format!("network namespace {ns} is gone, and {ip} with it"));
                return Ok(());
            }
            other => other?,
        }
        announce::stop_background(&ctx.state("announcer"), ip, &ctx.log);
        let nl = Netlink::connect()?;
        let place = recorded_place(ctx, &nl, p);
        let ours = |a: &Addr| match &place {
            Some(pl) => a.index == pl.link.index && a.prefix == pl.prefix,
            None => p.cidr_netmask.is_none_or(|c| c.len == a.prefix),
        };
        let found: Vec<Addr> = nl
            .addresses_of(ip)?
            .into_iter()
            .filter(|a| ours(a))
            .collect();
        let name = |index: u32| {
            nl.link_by_index(index)
                .ok()
                .flatten()
                .map(|l| l.name)
                .unwrap_or_else(|| format!("interface {index}"))
        };
        if !found.is_empty() {
            note_departing(ctx, ip);
        }
        for a in &found {
            nl.del_address(a)?;
            ctx.log
                .info(format!("removed {ip}/{} from {}", a.prefix, name(a.index)));
        }
        if let Some(left) = nl.addresses_of(ip)?.into_iter().find(|a| ours(a)) {
            return Err(VipError::StillThere {
                ip,
                nic: name(left.index),
            }
            .into());
        }
        if found.is_empty() {
            ctx.log
                .info(format!("{ip} is not configured; nothing to stop"));
        }
        if let Err(e) = ctx.state("vip").remove() {
            ctx.log
                .warn(format!("cannot remove the placement record: {e}"));
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Ctx, p: &VipParams) -> ocf::Result<Facts> {
        let ip = p.ip.0;
        match enter_netns(p) {
            Err(VipError::NoNetns(ns)) => {
                return Err(OcfError::not_running(format!(
                    "network namespace {ns} does not exist"
                )))
            }
            other => other?,
        }
        let nl = Netlink::connect()?;
        // The interface the address was put on has gone: a failure, as
        // IPaddr2 reports it, except to a probe, which asks only whether
        // the address is here.
        let gone = |nic: String| -> OcfError {
            if ctx.probe {
                OcfError::not_running(format!("{ip}: interface {nic} is not on this node"))
            } else {
                VipError::NicGone { ip, nic }.into()
            }
        };
        let place = match &p.nic {
            Some(n) => match nl.link(&n.name)? {
                Some(link) => Place {
                    link,
                    prefix: p.cidr_netmask.map(|c| c.len).unwrap_or(0),
                },
                None => return Err(gone(n.name.clone())),
            },
            None => match recorded(ctx) {
                Some((nic, prefix)) => match nl.link(&nic)? {
                    Some(link) => Place { link, prefix },
                    None => return Err(gone(nic)),
                },
                None => place(&nl, p).map_err(|_| {
                    OcfError::not_running(format!("{ip}: its interface is not on this node"))
                })?,
            },
        };
        let want_prefix = p
            .cidr_netmask
            .map(|c| c.len)
            .or((place.prefix > 0).then_some(place.prefix));
        let addrs: Vec<Addr> = nl
            .addresses_of(ip)?
            .into_iter()
            .filter(|a| a.index == place.link.index)
            .collect();
        let Some(a) = addrs
            .iter()
            .find(|a| want_prefix.is_none_or(|w| a.prefix == w))
        else {
            let what = match addrs.first() {
                Some(other) => format!(
                    "{ip} is on {} with prefix /{}, not /{}",
                    place.link.name,
                    other.prefix,
                    want_prefix.unwrap_or(0)
                ),
                None => format!("{ip} is not on {}", place.link.name),
            };
            return Err(OcfError::not_running(what));
        };
        if a.dad_failed() {
            return Err(VipError::MarkedDadFailed {
                ip,
                nic: place.link.name.clone(),
            }
            .into());
        }
        if !place.link.up || !place.link.carrier {
            return Err(VipError::LinkDown {
                nic: place.link.name.clone(),
                ip,
                why: if place.link.up {
                    "no carrier"
                } else {
                    "administratively down"
                },
            }
            .into());
        }
        if ip.is_ipv4() && p.arp_count_refresh.0 > 0 && !ctx.probe {
            let here = Place {
                link: place.link.clone(),
                prefix: a.prefix,
            };
            announce(ctx, p, &here, p.arp_count_refresh.0, None)?;
        }
        let mut facts = Facts::new()
            .with("ip", ip)
            .with("prefix", a.prefix)
            .with("nic", &place.link.name)
            .with("mac", place.link.mac.map(mac_text).unwrap_or_default());
        if a.tentative() {
            facts = facts.with("dad", "tentative");
        }
        if let Some(l) = a.label.as_ref().filter(|l| **l != place.link.name) {
            facts = facts.with("label", l);
        }
        Ok(facts)
    }
}
