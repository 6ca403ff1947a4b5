//! `dropbench`: how long dropping 1, 100 and 10,000 of A's locks takes.

use super::*;

/// Lock-drop times through `backend`; checks and metrics carry its name.
pub(crate) fn dropbench(w: &mut World, backend: &str) {
    let (a_dev, b_dev) = (rdev(A.dev), rdev(B.dev));
    for n in [1usize, 100, 10000] {
        let path = format!("{}/many-{n}", A.mnt);
        let (holder, line) = spawn_ready(
            lock_cmd(&w.client, &["many", &path, &n.to_string()]),
            Duration::from_secs(600),
        );
        let before_a = locks_on(a_dev);
        let before_b = locks_on(b_dev);
        check(
            &format!("dropbench {backend}: client holds {n} locks on A"),
            line == format!("HELD {n}") && before_a >= n,
            format!("{line}; {before_a} on A"),
        );
        let (_, mut params) = nodewide_members(&A, "existing", backend).swap_remove(1);
        // One round also drops by server address, to see it work on this kernel.
        if n == 100 {
            params.push(("unlock_ip", "true".into()));
        }
        let d = run_member(&w.node2, &A, "nlm-locks", "stop", &params);
        if n == 100 {
            check(
                &format!("dropbench {backend}: unlock_ip drops locks on this kernel"),
                d.code == 0 && !d.stderr.contains("dropped none"),
                d.stderr
                    .lines()
                    .filter(|l| l.contains("unlock_ip"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let dropped_ms = d
            .stderr
            .lines()
            .find_map(|l| {
                l.split_once(&format!("through {backend} in "))
                    .and_then(|(_, r)| r.trim_end_matches(" ms").parse::<f64>().ok())
            })
            .unwrap_or(f64::NAN);
        check(
            &format!("dropbench {backend}: {n} locks dropped"),
            d.code == 0 && locks_on(a_dev) == 0,
            format!("{} left; {}", locks_on(a_dev), d.reason()),
        );
        check(
            &format!("dropbench {backend}: B's locks untouched while dropping {n}"),
            locks_on(b_dev) == before_b,
            format!("{} on B", locks_on(b_dev)),
        );
        metric(&format!("drop_{backend}_{n}_locks_ms"), dropped_ms, "ms");
        metric(
            &format!("nlm_locks_stop_{backend}_{n}_locks_ms"),
            d.ms(),
            "ms",
        );
        kill(holder);
        let s = run_member(&w.node2, &A, "nlm-locks", "start", &params);
        check(
            &format!("dropbench {backend}: nlm-locks starts again after {n}"),
            s.code == 0,
            s.reason(),
        );
    }
}
