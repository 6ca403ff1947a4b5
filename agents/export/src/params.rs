//! The parameters of ocf:handoff:export, named as ocf:heartbeat:exportfs
//! names them.

use ocf::{AbsPath, ParamValue, Params};
pub use systables::etab::Fsid;

/// One or several client specifications, separated by spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSpecs(pub Vec<String>);

impl ParamValue for ClientSpecs {
    const PLACEHOLDER: &'static str = "CLIENT[ CLIENT...]";

    fn parse_value(raw: &str) -> Result<Self, String> {
        ocf::param::check_single_line(raw)?;
        let specs: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
        if specs.is_empty() {
            return Err("give at least one client, e.g. 192.0.2.0/24".into());
        }
        for s in &specs {
            let ok = s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-*?/@:[]".contains(c));
            if !ok || s.starts_with('-') {
                return Err(format!(
                    "client {s:?} is not a host, network (192.0.2.0/24), wildcard (*.example.com) or @netgroup"
                ));
            }
        }
        Ok(ClientSpecs(specs))
    }
}

/// Export options as exportfs -o takes them; fsid comes from its own
/// parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions(pub String);

impl ParamValue for ExportOptions {
    const PLACEHOLDER: &'static str = "OPT[,OPT...]";

    fn parse_value(raw: &str) -> Result<Self, String> {
        for item in raw.split(',') {
            if item.is_empty() {
                return Err(
                    "has an empty option (two commas in a row, or a comma at an end)".into(),
                );
            }
            if let Some(c) = item
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || "_=.:/@-".contains(*c)))
            {
                return Err(format!(
                    "option {item:?} contains {c:?}; options are words like rw or anonuid=65534"
                ));
            }
            if item.starts_with("fsid=") {
                return Err("set the filesystem ID with the fsid parameter, not in options".into());
            }
        }
        Ok(ExportOptions(raw.to_owned()))
    }
}

/// Where the export's client list is kept on the exported filesystem, or
/// none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmtabBackup(pub Option<String>);

impl ParamValue for RmtabBackup {
    const PLACEHOLDER: &'static str = "FILE|none";

    fn parse_value(raw: &str) -> Result<Self, String> {
        ocf::param::check_single_line(raw)?;
        if raw == "none" {
            return Ok(RmtabBackup(None));
        }
        if raw.contains('/') || raw == "." || raw == ".." {
            return Err("a file name in the exported directory (no /), or none".into());
        }
        Ok(RmtabBackup(Some(raw.to_owned())))
    }
}

/// The parameters of ocf:handoff:export.
#[derive(Debug, Params)]
pub struct ExportParams {
    /// The clients the directory is exported to, separated by spaces: hosts,
    /// networks (192.0.2.0/24), wildcards (*.example.com) or @netgroups.
    #[param(short = "Client specifications", unique_group = "export")]
    pub clientspec: ClientSpecs,

    /// Export options as for exportfs -o (rw, sync, no_root_squash...).
    /// The filesystem ID comes from the fsid parameter.
    #[param(
        short = "Export options",
        default = "rw,sync,no_subtree_check",
        reloadable
    )]
    pub options: ExportOptions,

    /// The exported directory. It must be the mount point of the group's
    /// filesystem unless allow_non_mountpoint is set: exporting the empty
    /// directory under an unmounted filesystem hands clients the wrong
    /// files.
    #[param(short = "Exported directory", unique_group = "export")]
    pub directory: AbsPath,

    /// The filesystem ID (a number or a UUID), identical on every node so
    /// that clients' file handles stay valid after a failover. Two exports
    /// of one directory with different IDs are refused, as is one ID on two
    /// directories.
    #[param(short = "Filesystem ID", unique)]
    pub fsid: Fsid,

    /// A file in the exported directory that keeps the export's entries of
    /// /var/lib/nfs/rmtab (the clients that mounted it) across a failover:
    /// written at stop, merged back at start. none disables it.
    #[param(
        short = "Client list backup on the export",
        default = ".rmtab",
        reloadable
    )]
    pub rmtab_backup: RmtabBackup,

    /// After unexporting, wait for the NFSv4 lease time so that v4 clients'
    /// state has expired before the filesystem is released.
    #[param(
        short = "Wait for the NFSv4 lease at stop",
        default = "false",
        reloadable
    )]
    pub wait_for_leasetime_on_stop: bool,

    /// The virtual NFS server (the name of the group's ocf:handoff:nfs-server)
    /// that serves this export: exportfs then runs inside its namespaces and
    /// the entry lands in its export table, not the node's. Empty: the
    /// node's own NFS server.
    #[param(short = "Virtual NFS server")]
    pub nfs_server: Option<vserver::ServerName>,

    /// Export a directory that is not a mount point.
    #[param(
        short = "Allow a directory that is not a mount point",
        default = "false"
    )]
    pub allow_non_mountpoint: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients() {
        assert_eq!(
            ClientSpecs::parse_value("192.0.2.0/24  *.example.com @nfs")
                .unwrap()
                .0,
            ["192.0.2.0/24", "*.example.com", "@nfs"]
        );
        for bad in ["", "   ", "a;b", "-o", "host(rw)", "a\nb", "$(x)"] {
            assert!(ClientSpecs::parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_and_fsid() {
        assert!(ExportOptions::parse_value("rw,sync,anonuid=65534").is_ok());
        for bad in ["rw,,sync", "rw,fsid=3", "rw sync", "rw;x", "rw,"] {
            assert!(ExportOptions::parse_value(bad).is_err(), "{bad:?}");
        }
        assert!(Fsid::parse_value("7").is_ok());
        assert!(Fsid::parse_value("3e6be9de-8139-4a84-b0b4-b8d6e1a84f44").is_ok());
        for bad in ["0", "-1", "abc", "4294967296", "root"] {
            assert!(Fsid::parse_value(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RmtabBackup::parse_value("none"), Ok(RmtabBackup(None)));
        assert!(RmtabBackup::parse_value("../x").is_err());
    }
}
