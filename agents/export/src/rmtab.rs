//! The export's part of /var/lib/nfs/rmtab (the clients that mounted it),
//! kept on the exported filesystem so that it moves with the export:
//! saved at stop, merged back at start.

use std::path::Path;

/// The rmtab lines (`client:path:count`) that belong to `dir`.
pub fn lines_for<'a>(rmtab: &'a str, dir: &Path) -> Vec<&'a str> {
    let want = dir.to_string_lossy();
    rmtab
        .lines()
        .filter(|l| {
            let Some((_, rest)) = l.split_once(':') else {
                return false;
            };
            rest.rsplit_once(':').is_some_and(|(path, _)| path == want)
        })
        .collect()
}

/// `rmtab` with `backup`'s lines added where missing.
pub fn merge(rmtab: &str, backup: &str) -> Option<String> {
    let mut out: Vec<&str> = rmtab.lines().collect();
    let mut added = false;
    for l in backup.lines().filter(|l| !l.trim().is_empty()) {
        if !out.contains(&l) {
            out.push(l);
            added = true;
        }
    }
    added.then(|| out.iter().map(|l| format!("{l}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_and_merges() {
        let rmtab = "192.0.2.50:/srv/a:0x00000001\n192.0.2.51:/srv/b:0x00000002\n192.0.2.52:/srv/ab:0x00000001\n";
        assert_eq!(
            lines_for(rmtab, Path::new("/srv/a")),
            ["192.0.2.50:/srv/a:0x00000001"]
        );
        let merged = merge(
            "192.0.2.51:/srv/b:0x00000002\n",
            "192.0.2.50:/srv/a:0x00000001\n",
        )
        .unwrap();
        assert_eq!(
            merged,
            "192.0.2.51:/srv/b:0x00000002\n192.0.2.50:/srv/a:0x00000001\n"
        );
        assert_eq!(merge(rmtab, "192.0.2.50:/srv/a:0x00000001\n"), None);
    }
}
