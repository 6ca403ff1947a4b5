//! The lines the host reads on the console.

/// Print a check; returns whether it held.
pub fn check(name: &str, ok: bool, detail: impl AsRef<str>) -> bool {
    let v = serde_json::json!({ "name": name, "ok": ok, "detail": detail.as_ref() });
    println!("HANDOFF-CHECK {v}");
    ok
}

/// Print a measurement.
pub fn metric(name: &str, value: f64, unit: &str) {
    let v = serde_json::json!({ "name": name, "value": value, "unit": unit });
    println!("HANDOFF-METRIC {v}");
}

/// Print a note for people reading the log.
pub fn note(text: impl AsRef<str>) {
    println!("-- {}", text.as_ref());
}

/// Print a timeline plot's data; the host draws it (target/vm-logs/).
pub fn plot(p: &crate::plot::Plot) {
    println!("{}", p.line());
}
