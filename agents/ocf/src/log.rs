//! Logging the way the ClusterLabs shell agents do: one tagged line per
//! message to stderr (Pacemaker's executor captures it), to syslog, and to
//! `HA_LOGFILE`; debug lines only with `HA_debug=1`.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::SystemTime;

/// Message severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Err,
    /// Something odd that did not fail.
    Warn,
    /// What the agent did.
    Info,
    /// Details for troubleshooting.
    Debug,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Err => "ERROR",
            Level::Warn => "WARNING",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    fn syslog_severity(self) -> u8 {
        match self {
            Level::Err => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug => 7,
        }
    }
}

/// The logger of one agent invocation.
#[derive(Debug)]
pub struct Logger {
    tag: String,
    debug: bool,
    stderr: bool,
    facility: Option<u8>,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    // Connected on first use: most monitors log nothing.
    syslog: RefCell<Option<Option<UnixDatagram>>>,
    // Opened by `pin`, for agents that leave the node's mount namespace.
    pinned: RefCell<Vec<(PathBuf, std::fs::File)>>,
}

impl Logger {
    /// A logger configured from the HA_* environment, tagged
    /// `agent(instance)[pid]` like ocf-shellfuncs.
    pub fn from_env(agent: &str, instance: &str) -> Self {
        Self {
            tag: format!("{agent}({instance})[{}]", std::process::id()),
            debug: crate::env::debug(),
            stderr: true,
            facility: crate::env::log_facility().and_then(|f| facility_code(&f)),
            logfile: crate::env::log_file(),
            debugfile: crate::env::debug_file(),
            syslog: RefCell::new(None),
            pinned: RefCell::new(Vec::new()),
        }
    }

    /// Open the log files and the syslog socket now, so that they keep
    /// working after this process enters another mount namespace (where
    /// the same paths lead elsewhere, or nowhere).
    pub fn pin(&self) {
        if self.facility.is_some() {
            self.syslog.borrow_mut().get_or_insert_with(connect_syslog);
        }
        let mut pinned = self.pinned.borrow_mut();
        for path in [&self.logfile, &self.debugfile].into_iter().flatten() {
            if pinned.iter().any(|(p, _)| p == path) {
                continue;
            }
            if let Ok(f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                pinned.push((path.clone(), f));
            }
        }
    }

    /// A logger that writes nothing (for tests and meta-data).
    pub fn silent() -> Self {
        Self {
            tag: String::new(),
            debug: false,
            stderr: false,
            facility: None,
            logfile: None,
            debugfile: None,
            syslog: RefCell::new(None),
            pinned: RefCell::new(Vec::new()),
        }
    }

    /// Log an error.
    pub fn err(&self, msg: impl fmt::Display) {
        self.log(Level::Err, &msg.to_string(), true);
    }

    /// Log a warning.
    pub fn warn(&self, msg: impl fmt::Display) {
        self.log(Level::Warn, &msg.to_string(), true);
    }

    /// Log what was done.
    pub fn info(&self, msg: impl fmt::Display) {
        self.log(Level::Info, &msg.to_string(), true);
    }

    /// Log a detail, only with `HA_debug=1`.
    pub fn debug(&self, msg: impl fmt::Display) {
        if self.debug {
            self.log(Level::Debug, &msg.to_string(), true);
        }
    }

    /// Log an error that was already printed on stderr (the exit reason).
    pub fn err_not_stderr(&self, msg: impl fmt::Display) {
        self.log(Level::Err, &msg.to_string(), false);
    }

    fn log(&self, level: Level, msg: &str, stderr: bool) {
        let line = format!("{}: {msg}", level.label());
        if stderr && self.stderr {
            // Nothing useful can be done if stderr is closed.
            let _ = writeln!(std::io::stderr(), "{}: {line}", self.tag);
        }
        if let Some(facility) = self.facility {
            self.syslog(facility, level, &line);
        }
        let file = if level == Level::Debug {
            self.debugfile.as_ref()
        } else {
            self.logfile.as_ref()
        };
        if let Some(path) = file {
            let stamp = humantime::format_rfc3339_millis(SystemTime::now());
            let text = format!("{stamp} {}: {line}", self.tag);
            let pinned = self.pinned.borrow();
            match pinned.iter().find(|(p, _)| p == path) {
                Some((_, f)) => {
                    let _ = writeln!(&*f, "{text}");
                }
                None => {
                    let _ = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .and_then(|mut f| writeln!(f, "{text}"));
                }
            }
        }
    }

    fn syslog(&self, facility: u8, level: Level, line: &str) {
        let mut slot = self.syslog.borrow_mut();
        let sock = slot.get_or_insert_with(connect_syslog);
        if let Some(sock) = sock {
            let pri = facility * 8 + level.syslog_severity();
            let _ = sock.send(format!("<{pri}>{}: {line}", self.tag).as_bytes());
        }
    }
}

fn connect_syslog() -> Option<UnixDatagram> {
    let s = UnixDatagram::unbound().ok()?;
    s.connect("/dev/log").ok()?;
    Some(s)
}

fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("bogus"), None);
    }

    #[test]
    fn logfile_lines_are_tagged() {
        let dir = std::env::temp_dir().join(format!("ocf-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("log");
        let mut log = Logger::silent();
        log.tag = "fs(a)[1]".into();
        log.logfile = Some(file.clone());
        log.info("mounted");
        log.debug("hidden");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.trim_end().ends_with("fs(a)[1]: INFO: mounted"),
            "{text}"
        );
        assert!(!text.contains("hidden"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
