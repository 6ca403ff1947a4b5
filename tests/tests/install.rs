//! `make install` puts each agent, its man page and its metadata where the
//! system expects them, and Pacemaker then lists ocf:handoff agents.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use handoff_tests::util::{bin_dir, have, run_ok, stdout_ok, workspace_root};
use handoff_tests::{needs_root, Sandbox, Scratch};

#[test]
fn make_install_lays_out_agents_man_pages_and_metadata() {
    needs_root!("make_install_lays_out_agents_man_pages_and_metadata");
    if !have("make", "install") {
        return;
    }
    let scratch = Scratch::new("install");
    let root = scratch.join("root");
    // The binaries are built already (cargo holds the build lock while
    // tests run), so make's build step is skipped with CARGO=true.
    let profile_dir = bin_dir();
    run_ok(
        Command::new("make")
            .arg("-C")
            .arg(workspace_root())
            .arg("install")
            .arg(format!("DESTDIR={}", root.display()))
            .arg("CARGO=true")
            .arg("STATIC=0")
            .arg(format!(
                "TARGET_DIR={}",
                profile_dir.parent().unwrap().display()
            ))
            .arg(format!(
                "PROFILE={}",
                if profile_dir.ends_with("debug") {
                    "dev"
                } else {
                    "release"
                }
            )),
    );
    let agent = root.join("usr/lib/ocf/resource.d/handoff/fs");
    let mode = std::fs::metadata(&agent)
        .expect("agent installed")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o755,
        "agent must be executable by everyone (ocf-tester runs meta-data as nobody)"
    );
    let man = std::fs::read_to_string(root.join("usr/share/man/man7/ocf_handoff_fs.7"))
        .expect("man page");
    assert!(man.starts_with(".TH OCF_HANDOFF_FS 7"));
    let xml =
        std::fs::read_to_string(root.join("usr/share/handoff/metadata/fs.xml")).expect("metadata");
    assert_eq!(
        xml,
        std::fs::read_to_string(workspace_root().join("ocf-metadata/fs.xml")).unwrap()
    );
    // Relative, so that it holds in a staged root and in a package.
    let link = std::fs::read_link(root.join("usr/sbin/handoff-fs")).expect("CLI symlink");
    assert_eq!(
        link,
        std::path::Path::new("../lib/ocf/resource.d/handoff/fs")
    );

    // Pacemaker finds the installed provider.
    if have("crm_resource", "install (crm_resource part)") {
        let sb = Sandbox::new();
        sb.overlay_ocf(&root.join("usr/lib/ocf/resource.d/handoff"), scratch.path());
        let agents = stdout_ok(
            sb.command("crm_resource")
                .args(["--list-agents", "ocf:handoff"]),
        );
        assert!(agents.lines().any(|l| l.trim() == "fs"), "{agents}");
        let providers = stdout_ok(sb.command("crm_resource").arg("--list-ocf-providers"));
        assert!(
            providers.lines().any(|l| l.trim() == "handoff"),
            "{providers}"
        );
    }
}
