//! `failover` and `refused`: one export moves between node servers while
//! the other keeps serving; a stop that cannot drop a lock fails.

use super::*;

pub(crate) fn failover(w: &mut World) {
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    for g in [&A, &B] {
        let (ok, detail) = all_ok(&start_group(&w.node1, g, "existing"));
        assert!(
            check(
                &format!("failover: group {} starts on node1", g.id),
                ok,
                &detail
            ),
            "group {} did not start",
            g.id
        );
    }
    for g in [&A, &B] {
        w.mount(g);
    }
    let wrote = w.data("write", &A, "42");
    check(
        "failover: client wrote 1 MiB to A",
        wrote.code == 0,
        wrote.stdout.trim(),
    );
    let held = [
        format!("{}/f1", A.mnt),
        format!("{}/f2", A.mnt),
        format!("{}/f1", B.mnt),
    ]
    .iter()
    .all(|p| w.hold(p));
    check("failover: client holds 2 locks on A and 1 on B", held, "");
    let seen = wait_for(Duration::from_secs(10), || {
        locks_on(a_dev) == 2 && locks_on(b_dev) == 1
    });
    check(
        "failover: node1 holds them for the client",
        seen.is_some(),
        format!("A {} B {}", locks_on(a_dev), locks_on(b_dev)),
    );

    let baseline = Loop::start(&w.client, "baseline");
    std::thread::sleep(Duration::from_secs(2));
    let base = baseline.finish();
    note(format!("B lock/unlock baseline: {base}"));
    metric(
        "b_baseline_median_ms",
        base["median_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );
    metric(
        "b_baseline_max_ms",
        base["max_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );

    // Release A on node1 while the client keeps locking on B.
    let during = Loop::start(&w.client, "during");
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let release = stop_group(&w.node1, &A, backend());
    let (ok, detail) = all_ok(&release);
    let released = check(
        "failover: A stops on node1 (vip, export, nlm-locks, fs)",
        ok,
        &detail,
    );
    metric("release_ms", total_ms(&release), "ms");
    for (a, d) in &release {
        metric(&format!("release_{}_ms", a.replace('-', "_")), d.ms(), "ms");
    }
    check(
        "failover: A's locks are gone from the server",
        locks_on(a_dev) == 0,
        format!("{} left", locks_on(a_dev)),
    );
    check(
        "failover: B's lock is still held",
        locks_on(b_dev) >= 1,
        format!("{} on B", locks_on(b_dev)),
    );
    check(
        "failover: A is unmounted on node1",
        !w.node1.is_mounted(A.dir),
        "",
    );
    if !released || locks_on(a_dev) != 0 {
        // Nothing after this would mean anything.
        let _ = during.finish();
        panic!("A was not released on node1");
    }

    // Take A over on node2 (idle until now: a restart gives it a fresh
    // grace), its export and vip starting longer after nlm-locks than the
    // node's own grace period (10 s, see World::new) lasts.
    let pause = Duration::from_secs(15);
    let takeover = start_members_paused(
        &w.node2,
        &A,
        nodewide_members(&A, "restart", backend()),
        Some(("nlm-locks", pause)),
    );
    let taken = Instant::now();
    let (ok, detail) = all_ok(&takeover);
    if !check(
        "failover: A starts on node2 (fs, nlm-locks, export, vip)",
        ok,
        &detail,
    ) {
        let _ = during.finish();
        panic!("A did not start on node2");
    }
    metric("takeover_ms", total_ms(&takeover), "ms");
    let reclaimed = wait_for(Duration::from_secs(90), || locks_on(a_dev) == 2);
    check(
        "failover: the client reclaims its 2 locks on A at node2, though A's vip started after the node's grace would have ended",
        reclaimed.is_some(),
        format!(
            "{} locks on A; node2 log: {}",
            locks_on(a_dev),
            w.node2
                .read("/run/agents.log")
                .lines()
                .filter(|l| l.contains("nlm-locks"))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );
    w.after_takeover("failover", "", &A, "42", (t0, taken, reclaimed));
    let ended = wait_for(Duration::from_secs(60), || !w.node2.in_grace());
    let log = w.node2.read("/run/agents.log");
    check(
        "failover: node2's restarted grace ends once A's locks are back",
        ended.is_some()
            && log
                .lines()
                .any(|l| l.contains("(a_nlm_locks)") && l.contains("every lock reclaimed")),
        log.lines()
            .filter(|l| l.contains("(a_nlm_locks)"))
            .collect::<Vec<_>>()
            .join(" | "),
    );

    let d = during.finish();
    note(format!("B lock/unlock during A's failover: {d}"));
    let errors = d["errors"].as_u64().unwrap_or(u64::MAX);
    let max = d["max_ms"].as_f64().unwrap_or(f64::NAN);
    metric(
        "b_during_count",
        d["count"].as_f64().unwrap_or(f64::NAN),
        "ops",
    );
    metric("b_during_errors", errors as f64, "ops");
    metric("b_during_max_ms", max, "ms");
    metric(
        "b_during_median_ms",
        d["median_ms"].as_f64().unwrap_or(f64::NAN),
        "ms",
    );
    check(
        "failover: B's client saw no failed lock operation",
        errors == 0,
        d.to_string(),
    );
    // A grace period would block for seconds; a slow TCG tick is far less.
    check(
        "failover: B's client saw no delay beyond normal (< 1 s)",
        max < 1000.0,
        d.to_string(),
    );
    for (name, params) in nodewide_members(&A, "existing", backend()) {
        let m = run_member(&w.node2, &A, name, "monitor", &params);
        check(
            &format!("failover: {name} of A monitors 0 on node2"),
            m.code == 0,
            m.reason(),
        );
    }
}

pub(crate) fn refused(w: &mut World) {
    let (local, line) = spawn_ready(
        lock_cmd(&w.node2, &["hold", &format!("{}/local", A.dir)]),
        Duration::from_secs(10),
    );
    check(
        "refused: a local process on node2 holds a lock on A",
        line == "HELD",
        &line,
    );
    let steps = stop_group(&w.node2, &A, "procfs");
    let nlm = steps
        .iter()
        .find(|(a, _)| *a == "nlm-locks")
        .map(|(_, d)| d.clone());
    let refused = nlm
        .as_ref()
        .is_some_and(|d| d.code == 1 && d.reason().contains("remain"));
    check(
        "refused: nlm-locks stop fails and says the locks remain",
        refused,
        nlm.map(|d| d.reason()).unwrap_or_default(),
    );
    check(
        "refused: fs is not stopped after it, A stays mounted",
        w.node2.is_mounted(A.dir) && steps.len() == 3,
        "",
    );
    kill(local);
    let (_, params) = &nodewide_members(&A, "existing", "kmod")[1];
    let d = run_member(&w.node2, &A, "nlm-locks", "stop", params);
    check(
        "refused: backend=kmod without the module fails (5)",
        d.code == 5 && d.reason().contains("/dev/folocks"),
        d.reason(),
    );
    check("refused: A is still mounted", w.node2.is_mounted(A.dir), "");
    // Serve A again (the instance is still recorded; the client's locks are
    // held again by nobody, so node2 is told nothing new).
    let (ok, detail) = all_ok(&start_group(&w.node2, &A, "existing"));
    check("refused: A serves again on node2", ok, detail);
}

/// `failback`: A moves between the node-wide servers, node2 to node1 and
/// back, with a writer on it; the first move with `tickle=false` (its
/// client reconnects on its own back-off), the second tickled by
/// nlm-locks from what its monitor recorded on the export. The second
/// is a failback: node2 served these clients before, and a socket it kept
/// from then would answer their reconnect (ClusterLabs' portblock has
/// `reset_local_on_unblock_stop` for that). So after each release the
/// releasing node must hold no socket on A's address: knfsd and lockd
/// close theirs as the address goes.
pub(crate) fn failback(w: &mut World) {
    let vip: std::net::Ipv4Addr = A.vip.parse().expect("A's address");
    let moves = [
        ("untickled", &w.node2, &w.node1, "false"),
        ("tickled", &w.node1, &w.node2, "true"),
    ];
    for (name, from, to, tickle) in moves {
        let mut list = nodewide_members(&A, "existing", backend());
        for (member, params) in &mut list {
            if *member == "nlm-locks" {
                params.push(("tickle", tickle.into()));
            }
        }
        let writer = Loop::journal(&w.client, A.mnt, &format!("fb-{name}"));
        std::thread::sleep(Duration::from_secs(1));
        // Pacemaker's recurring monitor, with the writer connected.
        if let Some((member, params)) = list.iter().find(|(m, _)| *m == "nlm-locks") {
            let m = run_member(from, &A, member, "monitor", params);
            let record = from.read(&format!("{}/.handoff-nsm/handoff-tcp-clients", A.dir));
            if tickle == "true" {
                check(
                    &format!(
                        "failback: nlm-locks' monitor on {} records A's client connections on the export",
                        from.name
                    ),
                    m.code == 0 && record.contains(A.vip),
                    format!("{}; record {record}", m.reason()),
                );
            }
        }
        let since = std::time::SystemTime::now();
        let (ok, detail) = all_ok(&stop_members(from, &A, list.clone()));
        let left = from.sockets_on(vip);
        check(
            &format!(
                "failback: {} keeps no socket on A's address once A left it ({name})",
                from.name
            ),
            ok && left.is_empty(),
            format!("{detail}; {left:?}"),
        );
        // Pacemaker busy with other groups: the address comes up seconds
        // after the release, as under a cluster, and a client that is
        // not tickled backs off further meanwhile.
        let (ok, detail) = all_ok(&start_members_paused(
            to,
            &A,
            list,
            Some(("export", Duration::from_secs(8))),
        ));
        check(
            &format!(
                "failback: A moves from {} to {} ({name})",
                from.name, to.name
            ),
            ok,
            detail,
        );
        std::thread::sleep(Duration::from_secs(1));
        let log = to.read("/run/agents.log");
        let events = crate::timeline::events_in(&[(to.name.as_str(), log.clone())], since);
        let up = crate::timeline::first(&events, &to.name, "(a_vip)", "start succeeded");
        let d = writer.finish();
        let after = up.map_or(f64::NAN, |up| crate::timeline::stall_after(&d, up));
        metric(&format!("failback_{name}_after_address_ms"), after, "ms");
        metric(
            &format!("failback_{name}_stall_ms"),
            d["max_ms"].as_f64().unwrap_or(f64::NAN),
            "ms",
        );
        check(
            &format!("failback: A's writer resumed and failed no write ({name})"),
            after.is_finite() && d["errors"].as_u64() == Some(0),
            format!("{after:.0} ms after A's address; {d}"),
        );
        let tickled = events.iter().any(|e| {
            e.who.ends_with("(a_nlm_locks)")
                && e.what.starts_with("tickled ")
                && !e.what.starts_with("tickled 0 ")
        });
        check(
            &format!(
                "failback: {}'s nlm-locks {} A's clients ({name})",
                to.name,
                if tickle == "true" {
                    "tickled"
                } else {
                    "did not tickle"
                }
            ),
            tickled == (tickle == "true"),
            log.lines()
                .filter(|l| l.contains("(a_nlm_locks)"))
                .collect::<Vec<_>>()
                .join(" | "),
        );
    }
}
