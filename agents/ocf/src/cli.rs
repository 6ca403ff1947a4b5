//! The command line: `AGENT ACTION` as Pacemaker calls it, and the
//! administrator's form `AGENT --device /dev/sdb1 --directory /srv/a start`,
//! whose flags come from the parameter declaration.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};

use crate::action::Action;
use crate::agent::AgentInfo;
use crate::param::{parse_duration, Content, ParamSpec};

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The action to run.
    pub action: Action,
    /// Parameter values given as flags; they override `OCF_RESKEY_*`.
    pub values: BTreeMap<String, String>,
    /// `--instance`.
    pub instance: Option<String>,
    /// `--check-level`.
    pub check_level: Option<String>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--json`.
    pub json: bool,
    /// Called with flags (by a person), not by Pacemaker.
    pub interactive: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run an action.
    Run(Invocation),
    /// Print this on stdout and exit 0 (help, man page).
    Print(String),
    /// Exit with this code; the message was printed.
    Exit(i32),
}

/// The usage line.
pub fn usage(agent: &str) -> String {
    format!(
        "usage: {agent} {{start|stop|monitor|status|validate-all|meta-data|reload-agent|reload|usage}}\n       {agent} [--PARAMETER VALUE ...] [--json] ACTION   (see --help)"
    )
}

fn action_or_exit(agent: &str, raw: &str) -> Result<Action, Parsed> {
    raw.parse::<Action>().map_err(|e| {
        eprintln!("{}{e}", crate::env::exit_reason_prefix());
        eprintln!("{}", usage(agent));
        Parsed::Exit(crate::Status::Unimplemented.code().into())
    })
}

/// Parse the command line. Pacemaker's form (one bare action) is read
/// without building the clap parser, to keep every action's start-up cheap.
pub fn parse(info: &AgentInfo, specs: &[ParamSpec], args: Vec<OsString>) -> Parsed {
    if args.len() == 2 {
        if let Some(raw) = args[1].to_str().filter(|a| !a.starts_with('-')) {
            return match action_or_exit(info.name, raw) {
                Ok(action) => Parsed::Run(Invocation {
                    action,
                    values: BTreeMap::new(),
                    instance: None,
                    check_level: None,
                    timeout: None,
                    json: false,
                    interactive: false,
                }),
                Err(p) => p,
            };
        }
    }
    if args.len() < 2 {
        eprintln!("{}", usage(info.name));
        return Parsed::Exit(crate::Status::Args.code().into());
    }
    parse_flags(info, specs, args)
}

/// The clap command built from the declaration.
pub fn command(info: &AgentInfo, specs: &[ParamSpec]) -> Command {
    let mut cmd =
        Command::new(info.name)
            .version(info.version)
            .about(info.shortdesc)
            .long_about(info.longdesc)
            .arg(Arg::new("ACTION").required(true).help(
                "start, stop, monitor (status), validate-all, meta-data, reload-agent, usage",
            ))
            .arg(
                Arg::new("instance")
                    .long("instance")
                    .value_name("NAME")
                    .help(
                    "Resource instance name used in logs and state files [default: the agent name]",
                ),
            )
            .arg(
                Arg::new("check-level")
                    .long("check-level")
                    .value_name("0|10|20")
                    .help("Monitor depth, as OCF_CHECK_LEVEL"),
            )
            .arg(
                Arg::new("timeout")
                    .long("timeout")
                    .value_name("TIME")
                    .help("Time budget of the action (e.g. 20s), as OCF_RESKEY_CRM_meta_timeout"),
            )
            .arg(
                Arg::new("json")
                    .long("json")
                    .action(ArgAction::SetTrue)
                    .help("Print the result as JSON on stdout"),
            )
            .arg(
                Arg::new("man")
                    .long("man")
                    .action(ArgAction::SetTrue)
                    .help("Print the man page (roff) and exit"),
            );
    for s in specs {
        let mut arg = Arg::new(s.name.to_owned())
            .long(s.flag())
            .value_name(s.placeholder)
            .help(s.shortdesc)
            .long_help(crate::metadata::param_longdesc(s, specs))
            .help_heading("Parameters");
        if s.flag() != s.name {
            arg = arg.alias(s.name);
        }
        if s.content == Content::Boolean {
            arg = arg.num_args(0..=1).default_missing_value("true");
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

fn parse_flags(info: &AgentInfo, specs: &[ParamSpec], args: Vec<OsString>) -> Parsed {
    // --man needs no action.
    if args.iter().any(|a| a == "--man") {
        return Parsed::Print(crate::manpage::render(info, specs));
    }
    let matches = match command(info, specs).try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() {
                crate::Status::Args.code().into()
            } else {
                0
            };
            let _ = e.print();
            return Parsed::Exit(code);
        }
    };
    let raw_action = matches
        .get_one::<String>("ACTION")
        .cloned()
        .unwrap_or_default();
    let action = match action_or_exit(info.name, &raw_action) {
        Ok(a) => a,
        Err(p) => return p,
    };
    let timeout = match matches.get_one::<String>("timeout") {
        None => None,
        Some(raw) => match parse_duration(raw) {
            Ok(d) => Some(d),
            Err(why) => {
                eprintln!(
                    "{}--timeout {raw:?}: {why}",
                    crate::env::exit_reason_prefix()
                );
                return Parsed::Exit(crate::Status::Args.code().into());
            }
        },
    };
    let values = specs
        .iter()
        .filter_map(|s| {
            matches
                .get_one::<String>(s.name)
                .map(|v| (s.name.to_owned(), v.clone()))
        })
        .collect();
    Parsed::Run(Invocation {
        action,
        values,
        instance: matches.get_one::<String>("instance").cloned(),
        check_level: matches.get_one::<String>("check-level").cloned(),
        timeout,
        json: matches.get_flag("json"),
        interactive: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::Content;

    const SPECS: &[ParamSpec] = &[
        ParamSpec {
            name: "run_fsck",
            shortdesc: "fsck",
            longdesc: "when",
            content: Content::String,
            choices: &["auto", "no"],
            default: Some("auto"),
            required: false,
            unique_group: None,
            reloadable: true,
            deprecated: None,
            placeholder: "auto|no",
        },
        ParamSpec {
            name: "arp_bg",
            shortdesc: "bg",
            longdesc: "background",
            content: Content::Boolean,
            choices: &[],
            default: Some("true"),
            required: false,
            unique_group: None,
            reloadable: false,
            deprecated: None,
            placeholder: "BOOL",
        },
    ];
    const INFO: AgentInfo = AgentInfo {
        provider: "handoff",
        name: "t",
        version: "0",
        shortdesc: "test",
        longdesc: "test agent",
        actions: &[],
        example: "",
    };

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn pacemaker_form() {
        match parse(&INFO, SPECS, args(&["t", "status"])) {
            Parsed::Run(i) => {
                assert_eq!(i.action, Action::Monitor);
                assert!(!i.interactive);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&INFO, SPECS, args(&["t", "promote"])),
            Parsed::Exit(3)
        ));
        assert!(matches!(parse(&INFO, SPECS, args(&["t"])), Parsed::Exit(2)));
    }

    #[test]
    fn flags_from_declaration() {
        let p = parse(
            &INFO,
            SPECS,
            args(&[
                "t",
                "--run-fsck",
                "no",
                "--arp-bg",
                "--json",
                "--timeout",
                "5s",
                "start",
            ]),
        );
        let Parsed::Run(i) = p else { panic!("{p:?}") };
        assert_eq!(i.action, Action::Start);
        assert_eq!(i.values.get("run_fsck").map(String::as_str), Some("no"));
        assert_eq!(i.values.get("arp_bg").map(String::as_str), Some("true"));
        assert_eq!(i.timeout, Some(Duration::from_secs(5)));
        assert!(i.json && i.interactive);
        // The OCF spelling with underscores is accepted too.
        let Parsed::Run(i) = parse(&INFO, SPECS, args(&["t", "--run_fsck", "auto", "stop"])) else {
            panic!()
        };
        assert_eq!(i.values.get("run_fsck").map(String::as_str), Some("auto"));
    }

    #[test]
    fn bad_flags_exit_2() {
        assert!(matches!(
            parse(&INFO, SPECS, args(&["t", "--bogus", "x", "start"])),
            Parsed::Exit(2)
        ));
        assert!(matches!(
            parse(&INFO, SPECS, args(&["t", "--timeout", "soon", "start"])),
            Parsed::Exit(2)
        ));
    }

    #[test]
    fn man_page_needs_no_action() {
        let Parsed::Print(man) = parse(&INFO, SPECS, args(&["t", "--man"])) else {
            panic!()
        };
        assert!(man.contains(".SH PARAMETERS"));
        assert!(man.contains("\\-\\-run\\-fsck") || man.contains("\\-\\-run-fsck"));
    }

    proptest::proptest! {
        // Whatever a shell or Pacemaker passes, parsing answers: no panic.
        #[test]
        fn any_command_line_parses_without_panic(
            words in proptest::collection::vec(
                "start|stop|monitor|status|--run-fsck|--arp-bg|--run_fsck|--json|--help|-h|auto|no|true|--|-|\\PC{0,8}",
                0..6,
            ),
        ) {
            let mut argv = vec!["t".to_owned()];
            argv.extend(words);
            let _ = parse(&INFO, SPECS, argv.into_iter().map(OsString::from).collect());
        }
    }
}
