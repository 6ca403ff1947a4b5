//! The man page (section 7, named like resource-agents' `ocf_heartbeat_*`),
//! rendered from the same declaration as the metadata.

use std::fmt::Write;

use crate::agent::AgentInfo;
use crate::metadata::param_longdesc;
use crate::param::ParamSpec;

/// Escape text for roff: backslashes, and lines starting with a control
/// character.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e")
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else if l.trim().is_empty() {
                ".sp".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The man page in roff.
pub fn render(info: &AgentInfo, specs: &[ParamSpec]) -> String {
    let mut m = String::new();
    let title = format!("ocf_{}_{}", info.provider, info.name);
    let _ = writeln!(
        m,
        ".TH {} 7 \"\" \"{} {}\" \"OCF resource agents\"",
        title.to_uppercase(),
        info.provider,
        info.version
    );
    let _ = writeln!(m, ".SH NAME\n{title} \\- {}", roff(info.shortdesc));
    let _ = writeln!(
        m,
        ".SH SYNOPSIS\n\\fB{}\\fR [\\fIOPTIONS\\fR] \\fIACTION\\fR\n.br\nOCF_RESKEY_\\fIname\\fR=\\fIvalue\\fR ... \\fB{}\\fR \\fIACTION\\fR",
        info.name, info.name
    );
    let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff(info.longdesc));

    let _ = writeln!(m, ".SH PARAMETERS");
    for s in specs {
        let mut facts = vec![s.content.ocf_name().to_owned()];
        if s.required {
            facts.push("required".to_owned());
        }
        if let Some(d) = s.default {
            facts.push(format!("default \"{d}\""));
        }
        let _ = writeln!(
            m,
            ".TP\n\\fB{}\\fR (\\fB\\-\\-{}\\fR \\fI{}\\fR; {})\n{}\n.sp\n{}",
            s.name,
            s.flag(),
            s.placeholder,
            facts.join(", "),
            roff(s.shortdesc),
            roff(&param_longdesc(s, specs))
        );
    }

    let _ = writeln!(m, ".SH ACTIONS\n.TS\nl l l.\nACTION\tTIMEOUT\tINTERVAL");
    for a in info.actions {
        let interval = a.interval_secs.map(|i| format!("{i}s")).unwrap_or_default();
        let depth = a.depth.map(|d| format!(" (depth {d})")).unwrap_or_default();
        let _ = writeln!(
            m,
            "{}{depth}\t{}s\t{interval}",
            a.metadata_name(),
            a.timeout_secs
        );
    }
    let _ = writeln!(m, ".TE");
    let _ = writeln!(
        m,
        ".SH OPTIONS\nEach parameter is also a flag (\\fB\\-\\-name\\fR, with dashes for underscores) that overrides OCF_RESKEY_\\fIname\\fR.\n\
.TP\n\\fB\\-\\-instance\\fR \\fINAME\\fR\nThe resource instance name used in logs and state files (default: the agent name).\n\
.TP\n\\fB\\-\\-check\\-level\\fR \\fI0|10|20\\fR\nMonitor depth, as OCF_CHECK_LEVEL.\n\
.TP\n\\fB\\-\\-timeout\\fR \\fITIME\\fR\nThe action's time budget, as OCF_RESKEY_CRM_meta_timeout.\n\
.TP\n\\fB\\-\\-json\\fR\nPrint the result (and, for monitor, what was observed) as JSON on standard output."
    );
    let _ = writeln!(
        m,
        ".SH EXIT STATUS\n0 success, 1 generic error, 2 invalid argument, 3 unimplemented action, \
4 insufficient privileges, 5 not installed, 6 not configured, 7 not running. \
Every failure prints one line starting with \\fBocf-exit-reason:\\fR on standard error."
    );
    let _ = writeln!(
        m,
        ".SH ENVIRONMENT\n.TP\nOCF_RESKEY_\\fIname\\fR\nParameter values.\n.TP\nOCF_CHECK_LEVEL\nMonitor depth.\n\
.TP\nOCF_RESKEY_CRM_meta_timeout\nTime budget in milliseconds.\n.TP\nHA_RSCTMP\nState directory (default /run/resource-agents).\n\
.TP\nHA_debug\n1 enables debug logging.\n.TP\nHA_LOGFACILITY, HA_LOGFILE\nSyslog facility (none disables) and log file."
    );
    let _ = writeln!(m, ".SH EXAMPLE\n.nf\n{}\n.fi", roff(info.example));
    let _ = writeln!(
        m,
        ".SH SEE ALSO\n\\fBpcs\\fR(8), \\fBcrm_resource\\fR(8), \\fBocf-tester\\fR(8)"
    );
    m
}
