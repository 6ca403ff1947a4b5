//! The Debian packages `make deb` builds (ci/test's `deb` step): lintian
//! finds nothing, and in a clean root (the host's root under a fresh
//! overlay, in a private mount namespace) they install, Pacemaker's tools
//! (crm_resource, pcs, crmsh) and man see the agents, DKMS has the module's
//! sources, and `dpkg -r` takes every file away again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use handoff_tests::util::{ci_kernel, have, run_ok, skip, stdout_ok, workspace_root};
use handoff_tests::{needs_root, Sandbox, Scratch};

const AGENTS: [&str; 5] = ["fs", "vip", "export", "nlm-locks", "nfs-server"];
const TEST: &str = "package";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The newest .deb of `package` in target/deb.
fn built(package: &str) -> Option<PathBuf> {
    let dir = workspace_root().join("target/deb");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop()
}

/// A root made of the host's, with every change in a tmpfs that goes with
/// the sandbox.
struct CleanRoot {
    sb: Sandbox,
    /// The root, as the sandbox sees it.
    root: PathBuf,
    /// The overlay's upper layer: everything written since.
    upper: PathBuf,
}

impl CleanRoot {
    fn new(scratch: &Path) -> Self {
        let sb = Sandbox::new();
        let top = scratch.join("layers");
        std::fs::create_dir_all(&top).expect("layers dir");
        run_ok(sb.command("mount").args(["-t", "tmpfs", "tmpfs"]).arg(&top));
        let (upper, work, root) = (top.join("upper"), top.join("work"), top.join("root"));
        run_ok(sb.command("mkdir").arg(&upper).arg(&work).arg(&root));
        run_ok(
            sb.command("mount")
                .args(["-t", "overlay", "overlay", "-o"])
                .arg(format!(
                    "lowerdir=/,upperdir={},workdir={}",
                    upper.display(),
                    work.display()
                ))
                .arg(&root),
        );
        run_ok(
            sb.command("mount")
                .arg("--rbind")
                .arg("/dev")
                .arg(root.join("dev")),
        );
        run_ok(
            sb.command("mount")
                .args(["-t", "proc", "proc"])
                .arg(root.join("proc")),
        );
        Self { sb, root, upper }
    }

    /// `path` in the root, seen from this process.
    fn path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.sb.pid()))
            .join(self.root.strip_prefix("/").unwrap_or(&self.root))
            .join(path.trim_start_matches('/'))
    }

    /// A command chrooted into the root.
    fn command(&self, program: &str) -> Command {
        let mut cmd = self.sb.command("chroot");
        cmd.arg(&self.root).arg(program);
        cmd
    }

    /// Run it; its output whatever the exit status.
    fn output(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("{program} in the clean root: {e}"))
    }

    /// Files and links written in the root since it was made, outside
    /// the places package managers and tools keep their own records.
    fn written(&self) -> Vec<String> {
        let out = stdout_ok(self.sb.command("find").arg(&self.upper).args([
            "-mindepth",
            "1",
            "!",
            "-type",
            "d",
            "!",
            "-type",
            "c",
            "-printf",
            "%P\n",
        ]));
        out.lines()
            .filter(|p| {
                !["var/", "tmp/", "root/", "etc/ld.so.cache"]
                    .iter()
                    .any(|k| p.starts_with(k))
            })
            .map(str::to_owned)
            .collect()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn lintian_finds_nothing_to_fix() {
    needs_root!(TEST);
    if !have("lintian", TEST) {
        return;
    }
    let (Some(agents), Some(dkms)) = (built("handoff"), built("handoff-folocks-dkms")) else {
        return skip(
            TEST,
            "no package in target/deb; run make deb (ci/test does)",
        );
    };
    let out = Command::new("lintian")
        .args(["--pedantic", "--info", "--fail-on", "none"])
        .arg(&agents)
        .arg(&dkms)
        .output()
        .expect("lintian");
    let report = text(&out);
    // Overridden tags (explained in debian/handoff.lintian-overrides) do
    // not show; anything else does, down to pedantic hints.
    let tags: Vec<&str> = report
        .lines()
        .filter(|l| {
            ["E: ", "W: ", "I: ", "P: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(tags.is_empty(), "lintian:\n{report}");
}

#[test]
fn installs_into_a_clean_root_and_removes_without_a_trace() {
    needs_root!(TEST);
    for p in [
        "dpkg-deb",
        "chroot",
        "crm",
        "pcs",
        "crm_resource",
        "dkms",
        "man",
    ] {
        if !have(p, TEST) {
            return;
        }
    }
    let (Some(agents), Some(dkms)) = (built("handoff"), built("handoff-folocks-dkms")) else {
        return skip(
            TEST,
            "no package in target/deb; run make deb (ci/test does)",
        );
    };
    let scratch = Scratch::new("package");
    let root = CleanRoot::new(scratch.path());
    assert!(
        !root.path("/usr/lib/ocf/resource.d/handoff").exists(),
        "the host has ocf:handoff installed by hand; the root is not clean"
    );
    // Both debs, copied into the root's /tmp.
    let in_root: Vec<String> = [&agents, &dkms]
        .iter()
        .map(|deb| {
            let name = deb.file_name().and_then(|n| n.to_str()).expect("deb name");
            let at = format!("/tmp/{name}");
            std::fs::copy(deb, root.path(&at)).expect("deb into the root");
            at
        })
        .collect();
    let out = root.output("dpkg", &["-i", &in_root[0], &in_root[1]], &[]);
    assert!(out.status.success(), "dpkg -i:\n{}", text(&out));

    // Pacemaker finds every agent, pcs shows the parameters.
    let listed = text(&root.output("crm_resource", &["--list-agents", "ocf:handoff"], &[]));
    for a in AGENTS {
        assert!(
            listed.lines().any(|l| l.trim() == a),
            "crm_resource lists no {a}:\n{listed}"
        );
    }
    let described = text(&root.output(
        "pcs",
        &["resource", "describe", "ocf:handoff:nfs-server"],
        &[],
    ));
    assert!(
        described.contains("Resource options:") && described.contains("directory (required)"),
        "pcs resource describe:\n{described}"
    );

    // crmsh validates a primitive against the installed metadata: it
    // takes a complete one and refuses a misspelt parameter.
    let cib = [("CIB_file", "/tmp/cib.xml")];
    let empty = root.output("cibadmin", &["--empty"], &[]);
    std::fs::write(root.path("/tmp/cib.xml"), &empty.stdout).expect("empty CIB");
    let crm = |args: &[&str]| root.output("crm", args, &cib);
    let prop = crm(&["configure", "property", "stonith-enabled=false"]);
    assert!(
        prop.status.success(),
        "crm configure property:\n{}",
        text(&prop)
    );
    let good = crm(&[
        "configure",
        "primitive",
        "a_fs",
        "ocf:handoff:fs",
        "params",
        "device=/dev/vdb",
        "directory=/srv/a",
        "fstype=ext4",
        "op",
        "monitor",
        "interval=20s",
    ]);
    assert!(
        good.status.success(),
        "crm configure primitive a_fs:\n{}",
        text(&good)
    );
    let bad = crm(&[
        "configure",
        "primitive",
        "b_fs",
        "ocf:handoff:fs",
        "params",
        "devic=/dev/vdb",
        "directory=/srv/b",
    ]);
    let said = text(&bad);
    assert!(
        !bad.status.success() && said.contains("parameter \"devic\" is not known"),
        "crm took a misspelt parameter:\n{said}"
    );
    let shown = text(&crm(&["configure", "show"]));
    assert!(
        shown.contains("primitive a_fs ocf:handoff:fs") && !shown.contains("b_fs"),
        "crm configure show:\n{shown}"
    );

    // Both man page names render.
    for page in ["ocf_handoff_vip", "handoff-vip"] {
        let man = text(&root.output("man", &["-P", "cat", page], &[("MANWIDTH", "80")]));
        assert!(
            man.contains("ocf_handoff_vip - Virtual"),
            "man {page}:\n{man}"
        );
    }
    let status = text(&root.output("dkms", &["status", "-m", "handoff-folocks"], &[]));
    assert!(
        status.contains(&format!("handoff-folocks/{VERSION}: added")),
        "dkms status:\n{status}"
    );

    // DKMS builds the packaged sources against a kernel with Rust: the
    // test kernel ci/kernel builds, or reuses (ci/test runs it first).
    if let Some(env) = ci_kernel(TEST, &["env"]) {
        let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
        let var = |k: &str| vars.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| *v);
        let release = var("KERNELRELEASE");
        let build = root.output(
            "dkms",
            &[
                "build",
                "-m",
                "handoff-folocks",
                "-v",
                VERSION,
                "-k",
                release,
                "--kernelsourcedir",
                var("KDIR"),
            ],
            &vars,
        );
        let log = std::fs::read_to_string(root.path(&format!(
            "/var/lib/dkms/handoff-folocks/{VERSION}/build/make.log"
        )))
        .unwrap_or_default();
        assert!(
            build.status.success(),
            "dkms build:\n{}\n{log}",
            text(&build)
        );
        let ko = format!(
            "/var/lib/dkms/handoff-folocks/{VERSION}/{release}/x86_64/module/handoff_folocks.ko"
        );
        let magic = text(&root.output("modinfo", &["-F", "vermagic", &ko], &[]));
        assert!(
            magic.starts_with(&format!("{release} ")),
            "DKMS built no module for {release}: modinfo says {magic:?}"
        );
    }

    let contents = stdout_ok(Command::new("dpkg-deb").arg("-c").arg(&agents))
        + &stdout_ok(Command::new("dpkg-deb").arg("-c").arg(&dkms));
    let out = root.output("dpkg", &["-r", "handoff", "handoff-folocks-dkms"], &[]);
    assert!(out.status.success(), "dpkg -r:\n{}", text(&out));
    let left: Vec<&str> = contents
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.'))
        .filter(|p| root.path(p).symlink_metadata().is_ok())
        .collect();
    assert!(left.is_empty(), "dpkg -r left {left:?}");
    for dir in [
        "/usr/lib/ocf/resource.d/handoff",
        "/usr/share/handoff",
        &format!("/usr/src/handoff-folocks-{VERSION}"),
        "/var/lib/dkms/handoff-folocks",
    ] {
        assert!(!root.path(dir).exists(), "dpkg -r left {dir}");
    }
    let written = root.written();
    assert!(
        written.is_empty(),
        "files left in the root after dpkg -r: {written:?}"
    );
}
