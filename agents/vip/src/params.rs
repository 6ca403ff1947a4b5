//! The parameters of ocf:handoff:vip, named as ocf:heartbeat:IPaddr2 names
//! them, with the same meaning when left out.

use std::net::{IpAddr, Ipv4Addr};

use ocf::{Bounded, ParamValue, Params, Time};

/// The virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualIp(pub IpAddr);

impl ParamValue for VirtualIp {
    const PLACEHOLDER: &'static str = "ADDRESS";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ip: IpAddr = raw.trim().parse().map_err(|_| {
            "not an IP address; give an IPv4 address such as 192.0.2.10 or an IPv6 address such as 2001:db8::10".to_owned()
        })?;
        // 127.0.0.0/8 other than lo's own address is allowed: LVS
        // direct-routing setups put addresses on lo (with nic=lo).
        let unusable = match ip {
            IpAddr::V4(v4) => {
                v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
                    || v4 == Ipv4Addr::LOCALHOST
            }
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast() || v6.is_loopback(),
        };
        if unusable {
            return Err("is an unspecified, multicast or broadcast address, or the loopback interface's own address, which cannot be a service address".into());
        }
        Ok(VirtualIp(ip))
    }
}

/// A prefix length; IPv4 netmasks in dotted form are converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The prefix length.
    pub len: u8,
    /// Given as a dotted netmask (worth a warning, as IPaddr2 gives).
    pub dotted: bool,
}

impl ParamValue for Prefix {
    const PLACEHOLDER: &'static str = "BITS";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Ok(len) = raw.parse::<u8>() {
            if (1..=128).contains(&len) {
                return Ok(Prefix { len, dotted: false });
            }
        }
        if let Ok(mask) = raw.parse::<Ipv4Addr>() {
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) == 0 && len > 0 {
                return Ok(Prefix {
                    len: len as u8,
                    dotted: true,
                });
            }
        }
        Err("expected a prefix length such as 24 (1 to 32 for IPv4, 1 to 128 for IPv6)".into())
    }
}

/// A name the kernel and the shell agree on: letters, digits, `_ . - @`.
fn check_name(raw: &str, max: usize, what: &str) -> Result<(), String> {
    let ok = !raw.is_empty()
        && raw.len() <= max
        && raw != "."
        && raw != ".."
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} is 1 to {max} characters of letters, digits, '_', '.', '-' or '@' (no spaces or shell characters)"
        ))
    }
}

/// An interface, possibly in IPaddr2's deprecated `eth0:label` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nic {
    /// The interface name.
    pub name: String,
    /// A label given as `name:label`.
    pub label: Option<String>,
}

impl ParamValue for Nic {
    const PLACEHOLDER: &'static str = "INTERFACE";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let (name, label) = match raw.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (raw, None),
        };
        check_name(name, 15, "an interface name")?;
        if let Some(l) = label {
            check_name(l, 15, "a label")?;
        }
        Ok(Nic {
            name: name.to_owned(),
            label: label.map(str::to_owned),
        })
    }
}

/// An IPv4 address label (shown as `nic:label` by `ip addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(pub String);

impl ParamValue for Label {
    const PLACEHOLDER: &'static str = "LABEL";

    fn parse_value(raw: &str) -> Result<Self, String> {
        check_name(raw, 14, "a label")?;
        Ok(Label(raw.to_owned()))
    }
}

/// A network namespace name (as under /run/netns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns(pub String);

impl ParamValue for Netns {
    const PLACEHOLDER: &'static str = "NAME";

    fn parse_value(raw: &str) -> Result<Self, String> {
        check_name(raw, 64, "a network namespace name")?;
        if raw.starts_with('.') {
            return Err("a network namespace name cannot start with '.'".into());
        }
        Ok(Netns(raw.to_owned()))
    }
}

/// The IPv4 broadcast address: explicit, or `+`/`-` for all host bits set
/// or cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broadcast {
    /// Host bits set.
    Plus,
    /// Host bits cleared.
    Minus,
    /// This address.
    Addr(Ipv4Addr),
}

impl ParamValue for Broadcast {
    const PLACEHOLDER: &'static str = "ADDRESS|+|-";

    fn parse_value(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "+" => Ok(Broadcast::Plus),
            "-" => Ok(Broadcast::Minus),
            other => other
                .parse()
                .map(Broadcast::Addr)
                .map_err(|_| "expected an IPv4 address, + or -".into()),
        }
    }
}

/// An IPv6 preferred lifetime: `forever` or seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Never deprecated.
    Forever,
    /// Deprecated after this many seconds (0: never used as a source).
    Secs(u32),
}

impl ParamValue for Lifetime {
    const PLACEHOLDER: &'static str = "forever|SECONDS";

    fn parse_value(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "forever" => Ok(Lifetime::Forever),
            n => n
                .parse::<u32>()
                .ok()
                .filter(|&s| s != u32::MAX)
                .map(Lifetime::Secs)
                .ok_or_else(|| "expected forever or a number of seconds".into()),
        }
    }
}

/// The kind of gratuitous ARP (IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpSender {
    /// ARP requests for the address (arping -U); what IPaddr2's send_arp does.
    Request,
    /// ARP replies (arping -A), for peers that ignore gratuitous requests.
    Reply,
}

impl ParamValue for ArpSender {
    const CHOICES: &'static [&'static str] = &[
        "request",
        "reply",
        "send_arp",
        "iputils_arping",
        "libnet_arping",
    ];
    const PLACEHOLDER: &'static str = "request|reply";

    fn parse_value(raw: &str) -> Result<Self, String> {
        match raw {
            // IPaddr2's program names all send requests.
            "request" | "send_arp" | "iputils_arping" | "libnet_arping" => Ok(ArpSender::Request),
            "reply" => Ok(ArpSender::Reply),
            _ => Err("expected request or reply (IPaddr2's send_arp, iputils_arping and libnet_arping mean request)".into()),
        }
    }
}

/// The parameters of ocf:handoff:vip.
#[derive(Debug, Params)]
pub struct VipParams {
    /// The virtual address, IPv4 (192.0.2.10) or IPv6 (2001:db8::10).
    #[param(short = "IPv4 or IPv6 address", unique)]
    pub ip: VirtualIp,

    /// The prefix length (e.g. 24; a dotted IPv4 netmask is converted).
    /// Left empty, it is taken from the most specific route that contains
    /// the address, as IPaddr2 does.
    #[param(short = "Prefix length")]
    pub cidr_netmask: Option<Prefix>,

    /// The interface to add the address to. Left empty, it is the interface
    /// of the most specific route that contains the address; when two
    /// interfaces have equally specific routes, start refuses and asks for
    /// nic. IPaddr2's deprecated nic=eth0:label form sets iflabel.
    #[param(short = "Network interface")]
    pub nic: Option<Nic>,

    /// IPv4 broadcast address, or + (host bits set) or - (cleared). Left
    /// empty, + is used for prefixes up to /30 and none for /31 and /32.
    #[param(short = "Broadcast address")]
    pub broadcast: Option<Broadcast>,

    /// An IPv4 label: the address shows as nic:iflabel (at most 15
    /// characters in all).
    #[param(short = "Interface label")]
    pub iflabel: Option<Label>,

    /// IPv6 preferred lifetime (forever or seconds); 0 keeps the address
    /// from being chosen as a source address.
    #[param(short = "IPv6 preferred lifetime", default = "forever")]
    pub preferred_lft: Lifetime,

    /// Do not add the prefix route the kernel adds for the address's subnet.
    #[param(short = "No prefix route", default = "false")]
    pub noprefixroute: bool,

    /// IPv6: skip duplicate address detection. This also turns the IPv6
    /// duplicate-address guard off.
    #[param(short = "No IPv6 DAD", default = "false")]
    pub nodad: bool,

    /// Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6)
    /// sent at start, so that peers point the address at this node.
    #[param(short = "Announcements at start", default = "5", reloadable)]
    pub arp_count: Bounded<0, 100>,

    /// Milliseconds between announcements.
    #[param(
        short = "Milliseconds between announcements",
        default = "200",
        reloadable
    )]
    pub arp_interval: Bounded<1, 10000>,

    /// IPv4: gratuitous ARPs sent on every monitor, which repairs peers'
    /// caches that a split brain left pointing elsewhere.
    #[param(short = "Announcements per monitor", default = "0", reloadable)]
    pub arp_count_refresh: Bounded<0, 100>,

    /// Send all but the first announcement in the background, so that start
    /// returns at once. Left empty: yes for IPv4, no for IPv6 (as IPaddr2).
    #[param(short = "Announce in the background", reloadable)]
    pub arp_bg: Option<bool>,

    /// IPv4 announcements as ARP requests (request, the default) or ARP
    /// replies (reply). IPaddr2's program names are accepted and mean
    /// request.
    #[param(short = "ARP request or reply", default = "request", reloadable)]
    pub arp_sender: ArpSender,

    /// Refuse to start an IPv4 address that another host already uses: an
    /// RFC 5227 ARP probe before the address is added, and the reason names
    /// the MAC that answered. For IPv6 the kernel's duplicate address
    /// detection is the guard (turned off only by nodad): an address it
    /// marks dadfailed is removed again and start fails, naming the MAC
    /// that advertised it. This is the last defence against two nodes
    /// serving the same export.
    #[param(
        short = "Refuse an address in use elsewhere",
        default = "true",
        reloadable
    )]
    pub duplicate_check: bool,

    /// How long the IPv4 probe listens for an answer; three probes are sent
    /// in that time. RFC 5227 allows seconds for any network; a cluster's
    /// LAN answers ARP within milliseconds, and this time adds to every
    /// failover.
    #[param(short = "IPv4 probe time", default = "100ms", reloadable)]
    pub duplicate_wait: Time,

    /// The network namespace (as named under /run/netns) to manage the
    /// address in, e.g. the one of an ocf:handoff:nfs-server. The interface
    /// must be in it.
    #[param(short = "Network namespace")]
    pub network_namespace: Option<Netns>,

    /// Accepted for IPaddr2 configurations and ignored.
    // Kept so that old configurations parse; the library warns when set.
    #[allow(dead_code)]
    #[param(
        short = "Ignored (IPaddr2 compatibility)",
        default = "false",
        deprecated = "it flushed the IPv4 routing cache, which Linux removed in 3.6; remove it"
    )]
    pub flush_routes: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(VirtualIp::parse_value("192.0.2.10").is_ok());
        assert!(VirtualIp::parse_value("2001:db8::10").is_ok());
        assert!(VirtualIp::parse_value("fe80::1").is_ok());
        assert!(VirtualIp::parse_value("127.0.0.3").is_ok());
        for bad in [
            "192.0.2",
            "192.0.2.300",
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "host",
            "192.0.2.1/24",
            "192.0.2.1;reboot",
        ] {
            assert!(VirtualIp::parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            Prefix::parse_value("24"),
            Ok(Prefix {
                len: 24,
                dotted: false
            })
        );
        assert_eq!(
            Prefix::parse_value("255.255.255.0"),
            Ok(Prefix {
                len: 24,
                dotted: true
            })
        );
        assert_eq!(
            Prefix::parse_value("255.255.255.255"),
            Ok(Prefix {
                len: 32,
                dotted: true
            })
        );
        for bad in ["0", "129", "-1", "255.0.255.0", "0.0.0.0", "x"] {
            assert!(Prefix::parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(Nic::parse_value("eth0").unwrap().label, None);
        assert_eq!(
            Nic::parse_value("eth0:web").unwrap().label.as_deref(),
            Some("web")
        );
        assert!(Nic::parse_value("br-lan.100").is_ok());
        for bad in [
            "",
            "eth 0",
            "eth0;reboot",
            "$(id)",
            "a/b",
            "sixteen_chars_xx",
            "..",
            "eth0:",
        ] {
            assert!(Nic::parse_value(bad).is_err(), "{bad:?}");
        }
        assert!(Netns::parse_value("export_a").is_ok());
        assert!(Netns::parse_value(".hidden").is_err());
    }

    #[test]
    fn small_values() {
        assert_eq!(Broadcast::parse_value("+"), Ok(Broadcast::Plus));
        assert!(Broadcast::parse_value("2001:db8::1").is_err());
        assert_eq!(Lifetime::parse_value("0"), Ok(Lifetime::Secs(0)));
        assert_eq!(Lifetime::parse_value("forever"), Ok(Lifetime::Forever));
        assert!(Lifetime::parse_value("-1").is_err());
        assert_eq!(ArpSender::parse_value("send_arp"), Ok(ArpSender::Request));
        assert!(ArpSender::parse_value("ipoibarping").is_err());
    }
}
