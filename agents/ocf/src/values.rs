//! Parameter value types several agents share: addresses, host names and
//! directories inside an exported filesystem.

use std::net::IpAddr;

use crate::param::{check_single_line, ParamValue};

impl ParamValue for IpAddr {
    const PLACEHOLDER: &'static str = "ADDRESS";

    fn parse_value(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map_err(|_| "not an IP address; give the export's virtual IP, e.g. 192.0.2.100".into())
    }
}

/// A host name (or address) handed to a program as one argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostName(pub String);

impl ParamValue for HostName {
    const PLACEHOLDER: &'static str = "NAME";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 253
            && !raw.starts_with('-')
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if ok {
            Ok(HostName(raw.to_owned()))
        } else {
            Err(
                "a host name or address: letters, digits, '.', '-' (no spaces or shell characters)"
                    .into(),
            )
        }
    }
}

/// A directory inside the exported filesystem, relative to its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelDir(pub String);

impl ParamValue for RelDir {
    const PLACEHOLDER: &'static str = "DIR";

    fn parse_value(raw: &str) -> Result<Self, String> {
        check_single_line(raw)?;
        if raw.is_empty() || raw.starts_with('/') || raw.split('/').any(|s| s == ".." || s == ".") {
            return Err("a directory inside the exported filesystem, relative to it (no leading /, no . or ..)".into());
        }
        Ok(RelDir(raw.trim_end_matches('/').to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(IpAddr::parse_value("192.0.2.100").is_ok());
        assert!(IpAddr::parse_value("2001:db8::1").is_ok());
        assert!(IpAddr::parse_value("nfs-a").is_err());
        assert!(HostName::parse_value("nfs-a.example.com").is_ok());
        for bad in ["", "-v", "a b", "a;b"] {
            assert!(HostName::parse_value(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RelDir::parse_value(".handoff-nsm/"),
            Ok(RelDir(".handoff-nsm".into()))
        );
        for bad in ["/abs", "../up", "a/./b", ""] {
            assert!(RelDir::parse_value(bad).is_err(), "{bad:?}");
        }
    }
}
