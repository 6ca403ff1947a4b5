//! The metadata XML: checked in, valid against resource-agents' DTD (what
//! ocf-tester checks) and pcs's schema, and read by Pacemaker and pcs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use handoff_tests::util::{bin_dir, have, stage_provider, stdout_ok, workspace_root};
use handoff_tests::{needs_root, Sandbox, Scratch};

fn agents() -> Vec<String> {
    handoff_tests::cluster::AGENTS
        .iter()
        .filter(|a| bin_dir().join(a).exists())
        .map(|a| a.to_string())
        .collect()
}

fn metadata(agent: &str) -> String {
    stdout_ok(Command::new(bin_dir().join(agent)).arg("meta-data"))
}

/// Run xmllint on a document; returns (success, stderr).
fn xmllint(doc: &str, args: &[&str], cwd: &Path) -> (bool, String) {
    let mut child = Command::new("xmllint")
        .args(args)
        .arg("-")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn checked_in_metadata_matches_the_binaries() {
    let list = agents();
    assert!(
        list.contains(&"fs".to_owned()),
        "fs is not built in {}",
        bin_dir().display()
    );
    for a in list {
        let file = workspace_root()
            .join("ocf-metadata")
            .join(format!("{a}.xml"));
        let checked_in = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(
            checked_in,
            metadata(&a),
            "{} drifted from `{a} meta-data`; run `make metadata` and commit",
            file.display()
        );
    }
}

#[test]
fn validates_against_the_ocf_dtd_and_pcs_schema() {
    if !have("xmllint", "validates_against_the_ocf_dtd_and_pcs_schema") {
        return;
    }
    let dtd_dir = Path::new("/usr/share/resource-agents");
    let pcs_rng = "/usr/share/pcs/data/ocf-1.0.rng";
    for a in agents() {
        let doc = metadata(&a);
        let (ok, err) = xmllint(&doc, &["--noout", "--valid"], dtd_dir);
        assert!(ok, "{a}: not valid against ra-api-1.dtd:\n{err}");
        if Path::new(pcs_rng).exists() {
            let (ok, err) = xmllint(&doc, &["--noout", "--relaxng", pcs_rng], dtd_dir);
            assert!(ok, "{a}: pcs would refuse it:\n{err}");
        }
    }
}

/// A parameter struct using every declaration feature, rendered by the
/// library exactly as an agent's would be.
mod every_feature {
    use ocf::{AbsPath, Params, Time};

    ocf::choice! {
        /// Modes.
        pub enum Mode { One = "one", Two = "two" }
    }

    #[derive(Debug, Params)]
    pub struct P {
        /// Required and unique on its own.
        #[param(short = "address", unique)]
        pub ip: String,
        /// Optional.
        #[param(short = "interface")]
        pub nic: Option<String>,
        /// Unique together with `port`.
        #[param(short = "directory", unique_group = "endpoint")]
        pub dir: AbsPath,
        /// Unique together with `dir`.
        #[param(short = "port", unique_group = "endpoint", default = "2049")]
        pub port: u16,
        /// Reloadable with a default.
        #[param(short = "mode", default = "one", reloadable)]
        pub mode: Mode,
        /// Old name of `delay`.
        #[param(short = "old delay", deprecated = "use delay", replaced_with = "delay")]
        pub wait: Option<Time>,
        /// A duration.
        #[param(short = "delay", default = "5s", reloadable)]
        pub delay: Time,
        /// A flag.
        #[param(short = "flag", default = "false")]
        pub flag: bool,
    }

    pub const INFO: ocf::AgentInfo = ocf::AgentInfo {
        provider: "handoff",
        name: "every",
        version: "0",
        shortdesc: "every feature",
        longdesc: "An agent declaring every kind of parameter.",
        actions: &[
            ocf::ActionSpec::new(ocf::Action::Start, 20),
            ocf::ActionSpec::new(ocf::Action::Stop, 20),
            ocf::ActionSpec::monitor(10, 20, 0),
            ocf::ActionSpec::monitor(60, 20, 10),
            ocf::ActionSpec::new(ocf::Action::ValidateAll, 5),
            ocf::ActionSpec::new(ocf::Action::MetaData, 5),
            ocf::ActionSpec::new(ocf::Action::Reload, 5),
        ],
        example: "pcs resource create x ocf:handoff:every ip=192.0.2.1",
    };
}

#[test]
fn every_declaration_feature_renders_valid_metadata() {
    use ocf::Params;
    let doc = ocf::metadata::render(&every_feature::INFO, every_feature::P::SPECS);
    assert!(
        doc.contains(r#"<parameter name="ip" unique="1" required="1">"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<parameter name="nic" unique="0" required="0">"#),
        "{doc}"
    );
    // A group of two cannot be said with the DTD's unique: it goes in text.
    assert!(
        doc.contains(r#"<parameter name="dir" unique="0" required="1">"#),
        "{doc}"
    );
    assert!(doc.contains("Unique together with port"), "{doc}");
    assert!(doc.contains("Allowed values: one, two."), "{doc}");
    assert!(
        doc.contains("Changing it takes effect without a restart (reload)."),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<parameter name="wait" unique="0" required="0" deprecated="1">"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<parameter name="delay" unique="0" required="0" obsoletes="wait">"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<content type="time" default="5s"/>"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<content type="boolean" default="false"/>"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<action name="monitor" timeout="20s" interval="60s" depth="10"/>"#),
        "{doc}"
    );
    assert!(
        doc.contains(r#"<action name="reload" timeout="5s"/>"#),
        "{doc}"
    );
    if have(
        "xmllint",
        "every_declaration_feature_renders_valid_metadata (xmllint part)",
    ) {
        let (ok, err) = xmllint(
            &doc,
            &["--noout", "--valid"],
            Path::new("/usr/share/resource-agents"),
        );
        assert!(ok, "not valid against ra-api-1.dtd:\n{err}\n{doc}");
        let rng = "/usr/share/pcs/data/ocf-1.0.rng";
        if Path::new(rng).exists() {
            let (ok, err) = xmllint(&doc, &["--noout", "--relaxng", rng], Path::new("/"));
            assert!(ok, "pcs would refuse it:\n{err}");
        }
    }
    let man = ocf::manpage::render(&every_feature::INFO, every_feature::P::SPECS);
    for name in ["ip", "nic", "dir", "port", "mode", "wait", "delay", "flag"] {
        assert!(
            man.contains(&format!("\\fB{name}\\fR")),
            "man page lacks {name}"
        );
    }
    assert!(man.starts_with(".TH OCF_HANDOFF_EVERY 7"), "{man}");
}

#[test]
fn man_pages_document_every_parameter() {
    for a in agents() {
        let man = stdout_ok(Command::new(bin_dir().join(&a)).arg("--man"));
        let doc = metadata(&a);
        for line in doc.lines().filter(|l| l.contains("<parameter name=\"")) {
            let name = line.split('"').nth(1).unwrap();
            assert!(
                man.contains(&format!("\\fB{name}\\fR")),
                "{a}: man page lacks {name}"
            );
        }
        assert!(
            man.contains(".SH EXIT STATUS") && man.contains(".SH EXAMPLE"),
            "{a}"
        );
    }
}

#[test]
fn pacemaker_and_pcs_read_it() {
    needs_root!("pacemaker_and_pcs_read_it");
    if !have("crm_resource", "pacemaker_and_pcs_read_it")
        || !have("pcs", "pacemaker_and_pcs_read_it")
    {
        return;
    }
    let scratch = Scratch::new("metadata-pcs");
    let sb = Sandbox::new();
    sb.overlay_ocf(&stage_provider(scratch.path()), scratch.path());
    let listed = stdout_ok(
        sb.command("crm_resource")
            .args(["--list-agents", "ocf:handoff"]),
    );
    for a in agents() {
        assert!(
            listed.lines().any(|l| l.trim() == a),
            "crm_resource does not list {a}: {listed}"
        );
        let shown = stdout_ok(
            sb.command("crm_resource")
                .args(["--show-metadata", &format!("ocf:handoff:{a}")]),
        );
        assert_eq!(
            shown.trim(),
            metadata(&a).trim(),
            "{a}: Pacemaker reads different metadata"
        );
    }
    let described = stdout_ok(
        sb.command("pcs")
            .args(["resource", "describe", "ocf:handoff:fs"]),
    );
    for p in [
        "device (required) (unique)",
        "directory (required) (unique)",
        "force_unmount",
        "run_fsck",
    ] {
        assert!(
            described.contains(p),
            "pcs describe lacks {p:?}:\n{described}"
        );
    }
    // pcs checks names, required parameters and uniqueness against it.
    let cib = scratch.join("cib.xml");
    std::fs::write(&cib, stdout_ok(Command::new("cibadmin").arg("--empty"))).unwrap();
    let pcs = |args: &[&str]| {
        sb.command("pcs")
            .arg("-f")
            .arg(&cib)
            .args(args)
            .output()
            .expect("pcs")
    };
    let ok = pcs(&[
        "resource",
        "create",
        "a",
        "ocf:handoff:fs",
        "device=/dev/sdx",
        "directory=/srv/a",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bogus = pcs(&[
        "resource",
        "create",
        "b",
        "ocf:handoff:fs",
        "device=/dev/sdy",
        "directory=/srv/b",
        "bogus=1",
    ]);
    assert!(!bogus.status.success());
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("invalid resource option 'bogus'"));
    let missing = pcs(&[
        "resource",
        "create",
        "c",
        "ocf:handoff:fs",
        "directory=/srv/c",
    ]);
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("required resource option 'device' is missing"));
    let twice = pcs(&[
        "resource",
        "create",
        "d",
        "ocf:handoff:fs",
        "device=/dev/sdx",
        "directory=/srv/d",
    ]);
    assert!(
        !twice.status.success(),
        "pcs accepted the same device twice"
    );
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("is not unique"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
}

#[test]
fn the_same_declaration_parses_values() {
    use every_feature::{Mode, P};
    use ocf::param::{MapSource, Source};
    use ocf::Params;

    struct Nothing;
    impl Source for Nothing {
        fn raw(&self, _: &str) -> Option<String> {
            None
        }
    }
    let src = |pairs: &[(&str, &str)]| MapSource {
        values: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        fallback: Nothing,
    };
    let p = P::from_source(&src(&[
        ("ip", "192.0.2.1"),
        ("dir", "/srv//a/"),
        ("wait", "2min"),
    ]))
    .unwrap();
    assert_eq!(p.ip, "192.0.2.1");
    assert_eq!(p.nic, None);
    assert_eq!(p.dir.as_path(), Path::new("/srv/a"));
    assert_eq!(p.port, 2049, "default applied");
    assert_eq!(p.mode, Mode::One);
    assert_eq!(p.wait.map(|t| t.0.as_secs()), Some(120));
    assert_eq!(p.delay.0.as_secs(), 5);
    assert!(!p.flag);
    let e = P::from_source(&src(&[("dir", "/srv")])).unwrap_err();
    assert_eq!(e.status, ocf::Status::Configured);
    assert!(e.reason.contains("'ip' is required"), "{}", e.reason);
    let e = P::from_source(&src(&[("ip", "x"), ("dir", "/srv"), ("port", "70000")])).unwrap_err();
    assert!(
        e.reason.contains("port=\"70000\"") && e.reason.contains("0 to 65535"),
        "{}",
        e.reason
    );
}
