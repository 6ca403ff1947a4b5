//! ocf:handoff:vip in network namespaces: a "server" (or two) and a "peer"
//! on a bridge. Lifecycle for both families, changes behind its back, what
//! the peer actually receives, a move between two servers as the peer sees
//! it, and the duplicate-address guard.

use std::time::{Duration, Instant};

use handoff_tests::util::have;
use handoff_tests::{needs_root, wait_until, AgentCmd, Host, Lan, Scratch};

fn vip(h: &Host, scratch: &Scratch, ip: &str) -> AgentCmd {
    h.agent("vip")
        .param("ip", ip)
        .env(
            "HA_RSCTMP",
            scratch.join(&format!("rsctmp-{}", h.name)).display(),
        )
        .env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESKEY_CRM_meta_timeout", "20000")
}

fn has(h: &Host, ip: &str) -> bool {
    h.addresses().iter().any(|l| l.contains(&format!(" {ip}/")))
}

fn lifecycle(ip: &str, extra: &[(&str, &str)]) {
    let scratch = Scratch::new("vip");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    let keep = srv
        .command("sysctl")
        .args(["-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1"])
        .status();
    assert!(keep.is_ok_and(|s| s.success()));
    let mut a = vip(srv, &scratch, ip);
    for (k, v) in extra {
        a = a.param(k, v);
    }
    let before = (srv.addresses(), srv.routes());
    a.run("monitor").expect(7, "monitor before start");
    a.run("validate-all").expect(0, "validate-all");
    a.run("start").expect(0, "start");
    assert!(has(srv, ip), "{ip} not added: {:?}", srv.addresses());
    a.run("start").expect(0, "start when started");
    assert_eq!(
        srv.addresses()
            .iter()
            .filter(|l| l.contains(&format!(" {ip}/")))
            .count(),
        1
    );
    let json = a.run_args(&["--ip", ip, "--json", "monitor"]);
    json.expect(0, "monitor");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["facts"]["nic"], "eth0");
    assert_eq!(
        doc["facts"]["prefix"],
        if ip.contains(':') { "64" } else { "24" }
    );
    assert_eq!(doc["facts"]["mac"], srv.mac());

    // Removed behind its back: not running.
    let prefix = if ip.contains(':') { 64 } else { 24 };
    srv.ip_ok(&["addr", "del", &format!("{ip}/{prefix}"), "dev", "eth0"]);
    let out = a.run("monitor");
    out.expect(7, "monitor after a foreign delete");
    assert!(
        out.reason().unwrap_or("").contains("is not on eth0"),
        "{out:?}"
    );
    a.run("start").expect(0, "start again");

    // The link set down: an error, not "stopped". (The kernel flushes IPv6
    // addresses of a link set down unless keep_addr_on_down is set, which
    // this server does; without it the truthful answer is "not running".)
    srv.ip_ok(&["link", "set", "eth0", "down"]);
    let out = a.run("monitor");
    out.expect(1, "monitor with the link down");
    assert!(
        out.reason().unwrap_or("").contains("administratively down"),
        "{out:?}"
    );
    srv.ip_ok(&["link", "set", "eth0", "up"]);
    // Carrier lost: the switch port goes away.
    lan.switch_ip(&["link", "set", &srv.port, "down"]);
    let out = a.run("monitor");
    out.expect(1, "monitor without carrier");
    assert!(out.reason().unwrap_or("").contains("no carrier"), "{out:?}");
    lan.switch_ip(&["link", "set", &srv.port, "up"]);
    assert!(wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || a.run("monitor").code == 0
    ));

    a.run("stop").expect(0, "stop");
    assert!(!has(srv, ip));
    a.run("stop").expect(0, "stop when stopped");
    a.run("monitor").expect(7, "monitor after stop");
    // Exactly this address went, nothing else did.
    let after = (srv.addresses(), srv.routes());
    assert_eq!(after.0, before.0, "addresses changed");
    assert_eq!(after.1, before.1, "routes changed");
}

#[test]
fn lifecycle_ipv4() {
    needs_root!("lifecycle_ipv4");
    lifecycle("192.0.2.100", &[]);
}

#[test]
fn lifecycle_ipv6() {
    needs_root!("lifecycle_ipv6");
    lifecycle("2001:db8::100", &[]);
}

#[test]
fn lifecycle_ipv6_nodad_and_ipv4_with_everything() {
    needs_root!("lifecycle_ipv6_nodad_and_ipv4_with_everything");
    lifecycle(
        "2001:db8::101",
        &[
            ("nodad", "true"),
            ("preferred_lft", "0"),
            ("cidr_netmask", "64"),
        ],
    );
    lifecycle(
        "192.0.2.101",
        &[
            ("nic", "eth0"),
            ("cidr_netmask", "24"),
            ("broadcast", "192.0.2.255"),
            ("iflabel", "nfs"),
            ("noprefixroute", "true"),
        ],
    );
}

#[test]
fn stop_removes_exactly_this_address() {
    needs_root!("stop_removes_exactly_this_address");
    let scratch = Scratch::new("vip-exact");
    let lan = Lan::new(&["srv", "peer"]);
    let srv = lan.host("srv");
    // Neighbours of the VIP on the same interface: same subnet, another
    // prefix of the same IP elsewhere, and IPv6.
    srv.ip_ok(&["addr", "add", "192.0.2.150/24", "dev", "eth0"]);
    srv.ip_ok(&["addr", "add", "198.51.100.7/24", "dev", "eth0"]);
    let a = vip(srv, &scratch, "198.51.100.100").param("cidr_netmask", "24");
    let before = (srv.addresses(), srv.routes());
    a.run("start").expect(0, "start");
    a.run("stop").expect(0, "stop");
    assert_eq!((srv.addresses(), srv.routes()), before);
}

#[test]
fn peer_receives_the_announcements_counted_and_spaced() {
    needs_root!("peer_receives_the_announcements_counted_and_spaced");
    if !have(
        "tcpdump",
        "peer_receives_the_announcements_counted_and_spaced",
    ) {
        return;
    }
    let scratch = Scratch::new("vip-arp");
    let lan = Lan::new(&["srv", "peer"]);
    let (srv, peer) = (lan.host("srv"), lan.host("peer"));
    let mac = srv.mac();
    for (ip, sender, filter, expect) in [
        (
            "192.0.2.100",
            "request",
            "arp and arp[6:2] == 1 and src host 192.0.2.100",
            "Request who-has 192.0.2.100 tell 192.0.2.100",
        ),
        (
            "192.0.2.101",
            "reply",
            "arp and arp[6:2] == 2",
            "Reply 192.0.2.101 is-at",
        ),
        (
            "2001:db8::100",
            "request",
            "icmp6 and ip6[40] == 136",
            "neighbor advertisement, tgt is 2001:db8::100",
        ),
    ] {
        let cap = peer.capture(filter, 5);
        let a = vip(srv, &scratch, ip)
            .param("arp_count", 5)
            .param("arp_interval", 150)
            .param("arp_sender", sender)
            .param("arp_bg", "true")
            .param("nodad", "true");
        let t = Instant::now();
        a.run("start").expect(0, "start");
        let took = t.elapsed();
        // In the background: start does not wait for the other four.
        assert!(
            took < Duration::from_millis(4 * 150),
            "{ip}: start waited for the announcements ({took:?})"
        );
        let got = cap.finish(Duration::from_secs(5));
        assert_eq!(got.len(), 5, "{ip}: peer received {got:#?}");
        for p in &got {
            assert!(
                p.line.contains(expect),
                "{ip}: unexpected packet {}",
                p.line
            );
            assert!(
                p.line.starts_with(&mac),
                "{ip}: not sent from {mac}: {}",
                p.line
            );
        }
        let gaps: Vec<f64> = got
            .windows(2)
            .map(|w| (w[1].at - w[0].at) * 1000.0)
            .collect();
        for g in &gaps {
            assert!(
                (120.0..250.0).contains(g),
                "{ip}: spacing {gaps:?} ms, asked for 150 ms"
            );
        }
        a.run("stop").expect(0, "stop");
    }
}

#[test]
fn stop_silences_a_running_announcer() {
    needs_root!("stop_silences_a_running_announcer");
    if !have("tcpdump", "stop_silences_a_running_announcer") {
        return;
    }
    let scratch = Scratch::new("vip-silence");
    let lan = Lan::new(&["srv", "peer"]);
    let (srv, peer) = (lan.host("srv"), lan.host("peer"));
    let a = vip(srv, &scratch, "192.0.2.100")
        .param("arp_count", 50)
        .param("arp_interval", 100);
    a.run("start").expect(0, "start");
    a.run("stop").expect(0, "stop");
    // A node that gave the address up must not keep claiming it.
    let cap = peer.capture("arp and src host 192.0.2.100", 1);
    let got = cap.finish(Duration::from_millis(800));
    assert!(got.is_empty(), "announcements after stop: {got:?}");
}

fn move_between_servers(ip: &str, ping: &[&str]) {
    let scratch = Scratch::new("vip-move");
    let lan = Lan::new(&["s1", "s2", "peer"]);
    let (s1, s2, peer) = (lan.host("s1"), lan.host("s2"), lan.host("peer"));
    let on = |h: &Host| vip(h, &scratch, ip).param("nodad", "true");
    on(s1).run("start").expect(0, "start on s1");
    let out = peer.command("ping").args(ping).arg(ip).output().unwrap();
    assert!(out.status.success(), "peer cannot reach {ip} on s1");
    assert_eq!(peer.neighbour(ip), Some(s1.mac()), "peer did not learn s1");
    // The kernel ignores updates within locktime (1 s) of the last one.
    std::thread::sleep(Duration::from_millis(1100));
    on(s1).run("stop").expect(0, "stop on s1");
    let t = Instant::now();
    on(s2).run("start").expect(0, "start on s2");
    let moved = wait_until(Duration::from_secs(3), Duration::from_millis(2), || {
        peer.neighbour(ip) == Some(s2.mac())
    });
    assert!(
        moved,
        "peer still points {ip} at {:?}, not s2 {}",
        peer.neighbour(ip),
        s2.mac()
    );
    eprintln!(
        "{ip}: peer's neighbour entry moved to s2 {:?} after start began",
        t.elapsed()
    );
    let out = peer.command("ping").args(ping).arg(ip).output().unwrap();
    assert!(out.status.success(), "peer cannot reach {ip} on s2");
    on(s2).run("stop").expect(0, "stop on s2");
}

#[test]
fn a_move_repoints_the_peer_ipv4() {
    needs_root!("a_move_repoints_the_peer_ipv4");
    if have("ping", "a_move_repoints_the_peer_ipv4") {
        move_between_servers("192.0.2.100", &["-c1", "-W2"]);
    }
}

#[test]
fn a_move_repoints_the_peer_ipv6() {
    needs_root!("a_move_repoints_the_peer_ipv6");
    if have("ping", "a_move_repoints_the_peer_ipv6") {
        move_between_servers("2001:db8::100", &["-6", "-c1", "-W2"]);
    }
}

#[test]
fn the_guard_refuses_an_address_in_use_and_names_its_owner() {
    needs_root!("the_guard_refuses_an_address_in_use_and_names_its_owner");
    let scratch = Scratch::new("vip-guard");
    let lan = Lan::new(&["srv", "peer"]);
    let (srv, peer) = (lan.host("srv"), lan.host("peer"));
    let owner = peer.mac();
    peer.ip_ok(&["addr", "add", "192.0.2.100/24", "dev", "eth0"]);
    peer.ip_ok(&["addr", "add", "2001:db8::100/64", "dev", "eth0", "nodad"]);
    for ip in ["192.0.2.100", "2001:db8::100"] {
        let before = (srv.addresses(), srv.routes());
        let out = vip(srv, &scratch, ip).run("start");
        out.expect(1, &format!("start of {ip} owned by the peer"));
        let reason = out.reason().unwrap_or_default().to_owned();
        assert!(
            reason.contains("already in use") && reason.contains(&owner),
            "{ip}: {reason}"
        );
        assert_eq!(
            (srv.addresses(), srv.routes()),
            before,
            "{ip}: a refused start changed the server"
        );
    }
    // Turned off, IPv4 starts anyway (the operator's decision).
    let a = vip(srv, &scratch, "192.0.2.100").param("duplicate_check", "false");
    a.run("start").expect(0, "start without the guard");
    a.run("stop").expect(0, "stop");
}
