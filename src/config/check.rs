//! How Redis 7.0.15 checks a value given to CONFIG SET (or a config file)
//! and the form CONFIG GET then shows it in: integers as Redis' `string2ll`
//! reads them, memory values as its `memtoull`, yes/no and enums in any
//! case, bounds per parameter. Which check a parameter gets is data
//! (`redis-7.0.15-params.txt`, written by `scripts/redis-params` from a
//! live redis-server); the few parameters with rules of their own are here
//! by name. `tests/differential_config.rs` puts every parameter through the
//! same values on both servers.
//!
//! Knows nothing of what a setting does: Herald's own settings take the
//! checked value from here and apply it in `Config::apply`.

use super::redis::{self, Kind};

/// The value CONFIG GET shows after `name` is set to `value`, or the reason
/// Redis refuses it (the text after "CONFIG SET failed (…) - ").
pub(crate) fn check(name: &str, value: &str) -> Result<String, String> {
    let Some(param) = redis::param(name) else { return Ok(value.to_string()) };
    match name {
        "cluster-announce-hostname" if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') => {
            return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
        }
        "proc-title-template" if !valid_title_template(value) => {
            return Err("template format is invalid or contains unknown variables".into());
        }
        _ => {}
    }
    check_kind(name, &param.kind, value)
}

fn check_kind(name: &str, kind: &Kind, value: &str) -> Result<String, String> {
    match kind {
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("yes" | "no") => Ok(v.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Enum(values) => match values.iter().find(|(v, _)| v.eq_ignore_ascii_case(value)) {
            Some((_, shown)) => Ok(shown.to_string()),
            None => {
                let names: Vec<&str> = values.iter().map(|(v, _)| *v).collect();
                Err(format!("argument(s) must be one of the following: {}", names.join(", ")))
            }
        },
        Kind::Int(low, high) => {
            let n = redis_integer(value).ok_or("argument couldn't be parsed into an integer")?;
            if !(*low..=*high).contains(&n) {
                return Err(format!("argument must be between {low} and {high} inclusive"));
            }
            // Redis keeps the server's tick rate within 1..=500 whatever
            // the parameter's wider bounds let through.
            Ok(if name == "hz" { n.clamp(1, 500) } else { n }.to_string())
        }
        Kind::Memory(low, high) => {
            let n = memory(value).ok_or("argument must be a memory value")?;
            if !(*low..=*high).contains(&n) {
                return Err(format!("argument must be between {low} and {high} inclusive"));
            }
            // A replication backlog is at least 16 KiB, whatever is set.
            Ok(if name == "repl-backlog-size" { n.max(16 * 1024) } else { n }.to_string())
        }
        Kind::Special => special(name, value),
        // CONFIG SET refuses these before any check: only a config file
        // gets here.
        Kind::Immutable(inner) | Kind::Protected(inner) => check_kind(name, inner, value),
        Kind::Text => Ok(value.to_string()),
    }
}

/// The parameters with rules of their own. Herald's own special settings
/// (bind, client-output-buffer-limit, maxmemory-clients) are parsed where
/// they are applied; they pass through unchanged here.
fn special(name: &str, value: &str) -> Result<String, String> {
    match name {
        "save" => {
            // Pairs of seconds (at least 1) and changes (at least 0).
            let args = multi_arg(value);
            let numbers: Option<Vec<i64>> = args.iter().map(|a| whole_strtoll(a)).collect();
            match numbers {
                Some(n) if n.len() % 2 == 0 && n.chunks(2).all(|p| p[0] >= 1 && p[1] >= 0) => {
                    Ok(n.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
                }
                _ => Err("Invalid save parameters".into()),
            }
        }
        "oom-score-adj-values" => {
            let args = multi_arg(value);
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let numbers: Option<Vec<i64>> =
                args.iter().map(|a| whole_strtoll(a).filter(|n| (-2000..=2000).contains(n))).collect();
            let numbers = numbers.ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
            Ok(numbers.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
        }
        "latency-tracking-info-percentiles" => {
            let mut shown = Vec::new();
            for arg in multi_arg(value) {
                let p = redis_float(arg).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
                }
                shown.push(trimmed_float(p));
            }
            Ok(shown.join(" "))
        }
        "notify-keyspace-events" => keyspace_events(value),
        "maxmemory-clients" => client_memory(value),
        // Start-only: a config file's line is checked as Redis checks it.
        "replicaof" | "slaveof" if multi_arg(value).len() != 2 => Err("wrong number of arguments".into()),
        "unixsocketperm" => match octal(value) {
            None => Err("argument couldn't be parsed as an octal number".into()),
            Some(n) if !(0..=0o777).contains(&n) => Err("argument must be between 0 and 777 inclusive".into()),
            Some(_) => Ok(value.to_string()),
        },
        _ => Ok(value.to_string()),
    }
}

/// `strtol(value, &end, 8)`, if it reads all of `value` without
/// overflowing (Redis' check of `unixsocketperm`): spaces, a sign, octal
/// digits, nothing after. With no digit, `strtol` reads nothing, so only
/// the empty string passes (as 0).
fn octal(value: &str) -> Option<i64> {
    let body = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (negative, digits) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body.strip_prefix('+').unwrap_or(body)),
    };
    if digits.is_empty() {
        return value.is_empty().then_some(0);
    }
    if !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let n = i64::from_str_radix(digits, 8).ok()?;
    Some(if negative { -n } else { n })
}

/// `maxmemory-clients`: a memory value, or a percentage (of `maxmemory`)
/// written `N%`. Redis keeps a percentage as a negative number and checks
/// both against -100..=2^63-1, so a memory value past 2^63 reads as a
/// percentage too (2^64-1 is `1%`); kept.
fn client_memory(value: &str) -> Result<String, String> {
    let percent = value.strip_suffix('%').filter(|_| value.len() > 1).and_then(redis_integer).filter(|p| *p >= 0);
    let n = match percent {
        Some(p) => -p,
        None => memory(value).ok_or("argument must be a memory or percent value")? as i64,
    };
    match n {
        n if n < -100 => Err("percentage argument must be less or equal to 100".into()),
        n if n < 0 => Ok(format!("{}%", -n)),
        n => Ok(n.to_string()),
    }
}

/// Redis' check of `proc-title-template`: `{name}` variables of a known
/// name (`{{` is a brace), and not empty once expanded and trimmed of
/// spaces, where the check expands `{title}`, `{server-mode}` (standalone)
/// and `{unixsocket}` (none) to nothing.
fn valid_title_template(template: &str) -> bool {
    let mut expanded = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(quoted) = after.strip_prefix('{') {
            expanded.push('{');
            rest = quoted;
            continue;
        }
        let Some(close) = after.find('}') else { return false };
        match &after[..close] {
            "title" | "server-mode" | "unixsocket" => {}
            "listen-addr" | "port" | "tls-port" | "config-file" => expanded.push('x'),
            _ => return false,
        }
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    !expanded.trim_matches(' ').is_empty()
}

/// A multi-argument parameter's value split as CONFIG SET splits it: on
/// each single space, so doubled or trailing spaces give empty arguments.
/// An empty value is no arguments.
pub(crate) fn multi_arg(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(' ').collect()
    }
}

/// Redis' `string2ll`: an optional `-`, then digits with no leading zero
/// (`0` alone excepted); no `+`, no spaces, no `-0`.
pub(crate) fn redis_integer(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let first = digits.bytes().next()?;
    if !(b'1'..=b'9').contains(&first) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Redis' `memtoull`: digits, then an optional unit (`b`, `k`, `kb`, `m`,
/// `mb`, `g`, `gb`, any case). Its quirks are kept: no digits reads as 0
/// (`kb` is 0 bytes), too many digits saturate at 2^64-1, and the unit's
/// multiplication wraps around.
pub(crate) fn memory(s: &str) -> Option<u64> {
    let split = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.len() >= 128 {
        return None;
    }
    let n = if digits.is_empty() { 0 } else { digits.parse::<u64>().unwrap_or(u64::MAX) };
    Some(n.wrapping_mul(multiplier))
}

/// C's `strtoll` over the whole string, as Redis uses it for save points
/// and OOM scores: leading white space and a sign allowed, leading zeros
/// too, an empty string reads as 0, overflow saturates; anything left over
/// refuses it.
pub(crate) fn whole_strtoll(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let body = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

/// Redis' `string2ld`: a decimal float with nothing around it; not NaN.
fn redis_float(s: &str) -> Option<f64> {
    let first = s.bytes().next()?;
    if first.is_ascii_whitespace() {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// `%f`, then trailing zeros (and a bare point) trimmed, as Redis shows a
/// percentile.
fn trimmed_float(f: f64) -> String {
    let text = format!("{f:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The event classes of `notify-keyspace-events`, in the order Redis shows
/// them; `A` is the first eleven (not `n`, new-key events).
const EVENT_CLASSES: &[u8] = b"g$lshzxetdn";
const ALL_CLASSES: &[u8] = b"g$lshzxetd";

fn keyspace_events(value: &str) -> Result<String, String> {
    let mut on = std::collections::BTreeSet::new();
    for c in value.bytes() {
        match c {
            b'A' => on.extend(ALL_CLASSES.iter().copied()),
            b'K' | b'E' | b'm' => {
                on.insert(c);
            }
            c if EVENT_CLASSES.contains(&c) => {
                on.insert(c);
            }
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        }
    }
    let mut shown = String::new();
    // With every class of `A` on, Redis shows `A` alone: `n` is on but
    // not shown (its display's quirk, kept).
    if ALL_CLASSES.iter().all(|c| on.contains(c)) {
        shown.push('A');
    } else {
        shown.extend(EVENT_CLASSES.iter().filter(|c| on.contains(c)).map(|&c| c as char));
    }
    shown.extend(b"KEm".iter().filter(|c| on.contains(c)).map(|&c| c as char));
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `strtol`'s reading of a permission, as Redis checks it.
    #[test]
    fn octal_permissions_read_as_strtol_reads_them() {
        let read = |v: &str| octal(v);
        assert_eq!((read("777"), read(" +70"), read("-1"), read("")), (Some(0o777), Some(0o70), Some(-1), Some(0)));
        assert_eq!(
            (read("8"), read("7 "), read("+"), read(" "), read(&"7".repeat(30))),
            (None, None, None, None, None)
        );
        assert_eq!(check("unixsocketperm", "1000"), Err("argument must be between 0 and 777 inclusive".into()));
        assert_eq!(check("replicaof", "host"), Err("wrong number of arguments".into()));
        assert_eq!(check("replicaof", "host 6379"), Ok("host 6379".into()));
    }

    #[test]
    fn integers_are_read_as_string2ll_reads_them() {
        for (text, read) in [("0", Some(0)), ("-12", Some(-12)), ("9223372036854775807", Some(i64::MAX))] {
            assert_eq!(redis_integer(text), read, "{text}");
        }
        for text in ["", "-", "+5", "007", "-0", " 5", "5 ", "1kb", "9223372036854775808"] {
            assert_eq!(redis_integer(text), None, "{text}");
        }
    }

    #[test]
    fn memory_values_are_read_as_memtoull_reads_them() {
        let cases = [
            ("1024", Some(1024)),
            ("1kb", Some(1024)),
            ("1K", Some(1000)),
            ("2MB", Some(2 << 20)),
            ("1g", Some(1_000_000_000)),
            ("007", Some(7)),
            ("1B", Some(1)),
            ("", Some(0)),
            ("kb", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("99999999999999999999999kb", Some(u64::MAX.wrapping_mul(1024))),
            ("-1", None),
            ("+5", None),
            ("5 ", None),
            ("1tb", None),
        ];
        for (text, read) in cases {
            assert_eq!(memory(text), read, "{text}");
        }
    }

    #[test]
    fn title_templates_are_checked_as_redis_checks_them() {
        for good in ["{title} {port}", "x}", "{{x}}", "{listen-addr}", "{config-file}", "a}}b", "{{"] {
            assert!(valid_title_template(good), "{good}");
        }
        for bad in ["", " ", "{title}", "x{", "{nope}", "{server-mode}", "{unixsocket}"] {
            assert!(!valid_title_template(bad), "{bad}");
        }
    }

    #[test]
    fn client_memory_is_bytes_or_a_percentage() {
        let cases = [
            ("0%", Ok("0")),
            ("5%", Ok("5%")),
            ("1kb", Ok("1024")),
            ("18446744073709551516", Ok("100%")),
            ("101%", Err("percentage argument must be less or equal to 100")),
            ("9223372036854775808", Err("percentage argument must be less or equal to 100")),
            ("05%", Err("argument must be a memory or percent value")),
            ("%", Err("argument must be a memory or percent value")),
        ];
        for (value, want) in cases {
            assert_eq!(client_memory(value), want.map(String::from).map_err(String::from), "{value}");
        }
    }

    #[test]
    fn keyspace_events_are_shown_in_redis_order() {
        assert_eq!(keyspace_events("KEA").unwrap(), "AKE");
        assert_eq!(keyspace_events("Exg").unwrap(), "gxE");
        assert_eq!(keyspace_events("g$lshzxetd").unwrap(), "A");
        assert_eq!(keyspace_events("nAm").unwrap(), "Am");
        assert!(keyspace_events("Kq").is_err());
    }
}
