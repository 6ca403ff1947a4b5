//! Logging as the shell agents do it: tagged lines to syslog (here a
//! socket the test binds at /dev/log inside a sandbox), debug lines only
//! with HA_debug=1, and the exit reason on stderr.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use handoff_tests::util::run_ok;
use handoff_tests::{needs_root, AgentCmd, Sandbox, Scratch};

fn received(sock: &UnixDatagram) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

#[test]
fn syslog_lines_are_tagged_and_debug_follows_ha_debug() {
    needs_root!("syslog_lines_are_tagged_and_debug_follows_ha_debug");
    let scratch = Scratch::new("syslog");
    let path = scratch.join("devlog.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let sb = Sandbox::new();
    // A private /dev in the sandbox, whose /dev/log is the test's socket.
    run_ok(sb.command("mount").args(["-t", "tmpfs", "dev", "/dev"]));
    run_ok(sb.command("touch").arg("/dev/log"));
    run_ok(sb.command("mount").arg("--bind").arg(&path).arg("/dev/log"));

    let fs = AgentCmd::new(&sb, "fs")
        .env("OCF_RESOURCE_INSTANCE", "logged")
        .env("HA_LOGFACILITY", "local3")
        .env("HA_RSCTMP", scratch.join("rsctmp").display())
        .param("device", "/dev/handoff-none")
        .param("directory", scratch.join("mnt").display());

    let out = fs.run("validate-all");
    out.expect(5, "validate-all of a missing device");
    let lines = received(&sock);
    // local3 (19) * 8 + err (3) = 155.
    let err = lines
        .iter()
        .find(|l| l.starts_with("<155>fs(logged)["))
        .unwrap_or_else(|| panic!("no error line: {lines:?}"));
    assert!(
        err.contains("ERROR: validate-all failed with 5 (not installed)")
            && err.contains("/dev/handoff-none"),
        "{err}"
    );
    // The reason went to stderr once, as the exit reason only.
    assert_eq!(
        out.stderr.matches("/dev/handoff-none").count(),
        1,
        "{}",
        out.stderr
    );

    // A probe that finds nothing is not an error; its reason is a debug line.
    fs.run("monitor").expect(7, "probe");
    assert!(received(&sock).is_empty(), "logged without HA_debug");
    let out = fs.clone().env("HA_debug", "1").run("monitor");
    out.expect(7, "probe with HA_debug=1");
    let lines = received(&sock);
    assert!(
        lines.iter().any(|l| l.starts_with("<159>fs(logged)[")
            && l.contains("DEBUG: ")
            && l.contains("is not mounted")),
        "{lines:?}"
    );
    assert!(
        out.reason().is_none(),
        "a probe finding nothing printed an exit reason: {}",
        out.stderr
    );

    // HA_LOGFACILITY=none: nothing reaches syslog.
    fs.clone()
        .env("HA_LOGFACILITY", "none")
        .run("validate-all")
        .expect(5, "validate-all");
    assert!(received(&sock).is_empty());
}
