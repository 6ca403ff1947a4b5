//! Where an address belongs when nic or cidr_netmask is left out: the
//! interface and prefix of the most specific route containing it (IPaddr2's
//! findif, without the shell pipeline).

use std::net::IpAddr;

use crate::error::VipError;
use crate::netlink::Route;

/// Whether `ip` lies in `net/prefix`.
pub fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The interface index and prefix to use. `name` names an index in errors.
pub fn choose(
    ip: IpAddr,
    nic: Option<u32>,
    prefix: Option<u8>,
    routes: &[Route],
    name: impl Fn(u32) -> String,
) -> Result<(u32, u8), VipError> {
    if let (Some(n), Some(p)) = (nic, prefix) {
        return Ok((n, p));
    }
    let candidates: Vec<&Route> = routes
        .iter()
        .filter(|r| r.dst.is_ipv4() == ip.is_ipv4())
        .filter(|r| r.prefix > 0 && contains(r.dst, r.prefix, ip))
        // IPv4: only directly connected networks, as findif does.
        .filter(|r| ip.is_ipv6() || r.link_scope)
        .filter(|r| prefix.is_none_or(|p| r.prefix <= p))
        .filter(|r| nic.is_none_or(|n| r.oif == Some(n)))
        .filter(|r| r.oif.is_some())
        .collect();
    let Some(best) = candidates.iter().map(|r| r.prefix).max() else {
        return Err(VipError::NoRoute {
            ip,
            on: nic.map(|n| format!(" on {}", name(n))).unwrap_or_default(),
        });
    };
    let mut oifs: Vec<u32> = candidates
        .iter()
        .filter(|r| r.prefix == best)
        .filter_map(|r| r.oif)
        .collect();
    oifs.sort();
    oifs.dedup();
    match oifs.as_slice() {
        [one] => Ok((nic.unwrap_or(*one), prefix.unwrap_or(best))),
        many => Err(VipError::Ambiguous {
            ip,
            nics: many
                .iter()
                .map(|&i| name(i))
                .collect::<Vec<_>>()
                .join(" and "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: &str, prefix: u8, oif: u32, link: bool) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            oif: Some(oif),
            link_scope: link,
        }
    }

    fn name(i: u32) -> String {
        format!("eth{i}")
    }

    #[test]
    fn containment() {
        let ip = "192.0.2.77".parse().unwrap();
        assert!(contains("192.0.2.0".parse().unwrap(), 24, ip));
        assert!(!contains("192.0.2.0".parse().unwrap(), 26, ip));
        assert!(contains("0.0.0.0".parse().unwrap(), 0, ip));
        assert!(contains(
            "2001:db8::".parse().unwrap(),
            64,
            "2001:db8::5".parse().unwrap()
        ));
        assert!(!contains("2001:db8::".parse().unwrap(), 64, ip));
    }

    #[test]
    fn most_specific_connected_route_wins() {
        let routes = [
            r("0.0.0.0", 0, 1, false),
            r("192.0.0.0", 16, 1, true),
            r("192.0.2.0", 24, 2, true),
            r("192.0.2.64", 26, 3, false), // via a gateway: not connected
        ];
        let ip = "192.0.2.77".parse().unwrap();
        assert_eq!(choose(ip, None, None, &routes, name).unwrap(), (2, 24));
        // A given nic narrows the choice; a given prefix is kept.
        assert_eq!(choose(ip, Some(1), None, &routes, name).unwrap(), (1, 16));
        assert_eq!(choose(ip, None, Some(28), &routes, name).unwrap(), (2, 28));
        // Both given: no route needed.
        assert_eq!(choose(ip, Some(9), Some(24), &[], name).unwrap(), (9, 24));
    }

    #[test]
    fn ambiguity_and_absence_are_errors() {
        let routes = [r("192.0.2.0", 24, 1, true), r("192.0.2.0", 24, 2, true)];
        let ip = "192.0.2.77".parse().unwrap();
        let e = choose(ip, None, None, &routes, name).unwrap_err();
        assert_eq!(
            e.to_string(),
            "192.0.2.77 matches routes on eth1 and eth2 equally well; set nic to choose one"
        );
        let e = choose("198.51.100.1".parse().unwrap(), None, None, &routes, name).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("no route on this node contains 198.51.100.1"));
        let e = choose(ip, Some(7), None, &routes, name).unwrap_err();
        assert!(e.to_string().contains("on eth7"), "{e}");
    }

    #[test]
    fn ipv6_routes_need_no_link_scope() {
        let routes = [r("2001:db8::", 64, 4, false), r("::", 0, 4, false)];
        assert_eq!(
            choose("2001:db8::10".parse().unwrap(), None, None, &routes, name).unwrap(),
            (4, 64)
        );
    }
}
