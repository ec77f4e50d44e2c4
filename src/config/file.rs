//! `herald.conf`: Redis-style directives, one per line (`name arg…`, `#`
//! comments, quotes as redis-cli's), the same names as Redis and CONFIG
//! GET. Command-line flags and `HERALD_*` variables are applied on top as
//! directives too, so every setting has one parser.

use std::path::Path;

use super::Config;
use crate::protocol::inline::split_args;

/// Applies one directive. Startup-only settings are handled here; the rest
/// go through [`Config::set`], as CONFIG SET would.
pub fn apply(config: &mut Config, name: &str, args: &[String]) -> Result<(), String> {
    let name = name.to_ascii_lowercase();
    let one = || match args {
        [value] => Ok(value.as_str()),
        _ => Err(format!("'{name}' takes one argument")),
    };
    let number = |what: &str| what.parse::<u64>().map_err(|_| format!("'{name}' needs a number, not '{what}'"));
    // Every Redis parameter is checked as Redis checks it first, so those
    // Herald reads itself (`databases`, `port`, `cluster-enabled`…) are
    // too: a file Redis refuses to start with is refused. The rest are
    // checked again by `Config::load` below, once per directive at start.
    if let [value] = args {
        if super::redis::knows(&name) {
            super::check::check(&name, value).map_err(|why| super::invalid(&name, &why).replacen("ERR ", "", 1))?;
        }
    }
    match name.as_str() {
        "bind" => {
            if args.is_empty() {
                return Err("'bind' needs at least one address".into());
            }
            config.bind = args.join(" ");
        }
        "port" => config.port = number(one()?)?.try_into().map_err(|_| "port out of range".to_string())?,
        "tls-port" => config.tls_port = number(one()?)?.try_into().map_err(|_| "tls-port out of range".to_string())?,
        "threads" => config.threads = Some(number(one()?)?.max(1) as usize),
        "metrics-port" => {
            config.metrics_port = number(one()?)?.try_into().map_err(|_| "metrics-port out of range".to_string())?
        }
        "databases" => config.databases = number(one()?)?.clamp(1, u32::MAX as u64) as u32,
        "tls-cert-file" => config.tls_settings().cert_file = one()?.into(),
        "tls-key-file" => config.tls_settings().key_file = one()?.into(),
        "tls-ca-cert-file" => config.tls_settings().ca_cert_file = Some(one()?.into()),
        "tls-auth-clients" => config.tls_settings().auth_clients = crate::tls::ClientAuth::parse(one()?)?,
        "cluster-enabled" => {
            config.cluster_enabled = match one()?.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                other => return Err(format!("'cluster-enabled' is yes or no, not '{other}'")),
            }
        }
        "cluster-nodes" => config.cluster.nodes = addresses(&name, args)?,
        "cluster-slots" => {
            let [node, ranges @ ..] = args else { return Err("'cluster-slots' needs host:port first-last…".into()) };
            let ranges = ranges.iter().map(|r| slot_range(r)).collect::<Result<Vec<_>, _>>()?;
            if ranges.is_empty() {
                return Err("'cluster-slots' needs host:port first-last…".into());
            }
            config.cluster.slots.push((node.clone(), ranges));
        }
        "cluster-etcd" => config.cluster.etcd = addresses(&name, args)?,
        "cluster-name" => {
            let name = one()?;
            if name.is_empty() || name.contains('/') {
                return Err(format!("'cluster-name' is a name without '/', not '{name}'"));
            }
            config.cluster.name = name.into();
        }
        "cluster-lease-ttl" => {
            let seconds = number(one()?)?;
            if !(2..=3600).contains(&seconds) {
                return Err("'cluster-lease-ttl' is between 2 and 3600 seconds".into());
            }
            config.cluster.lease_ttl = std::time::Duration::from_secs(seconds)
        }
        "cluster-announce-ip" => config.cluster.announce_ip = Some(one()?.into()),
        "cluster-port" => {
            config.cluster.bus_port = number(one()?)?.try_into().map_err(|_| "cluster-port out of range")?
        }
        "cluster-node-timeout" => {
            config.cluster.node_timeout = std::time::Duration::from_millis(number(one()?)?.max(1))
        }
        "cluster-link-sendbuf-limit" => {
            let v = one()?;
            config.cluster.link_sendbuf_limit =
                super::check::memory(v).ok_or_else(|| format!("'{name}' needs a memory value, not '{v}'"))? as usize
        }
        "user" => {
            if args.is_empty() {
                return Err("'user' needs a name".into());
            }
            config.users.push(args.join(" "));
        }
        _ if super::redis::FILE_ONLY.contains(&name.as_str()) => {
            config.foreign.insert(name.clone(), args.join(" "));
        }
        _ => {
            let several = name == "client-output-buffer-limit" || (super::redis::knows(&name) && !herald_has(&name));
            let value = if several { args.join(" ") } else { one()?.to_string() };
            config.load(&name, &value).map_err(|e| {
                let e = e.trim_start_matches("ERR ");
                if e.starts_with("Unknown option") {
                    format!("unknown directive '{name}'")
                } else {
                    e.to_string()
                }
            })?
        }
    }
    Ok(())
}

/// `first-last` or one slot.
fn slot_range(text: &str) -> Result<(u16, u16), String> {
    let slot = |s: &str| s.parse::<u16>().ok().filter(|&n| (n as usize) < super::CLUSTER_SLOTS);
    let range = match text.split_once('-') {
        Some((a, b)) => slot(a).zip(slot(b)),
        None => slot(text).map(|n| (n, n)),
    };
    range.filter(|(a, b)| a <= b).ok_or_else(|| format!("'{text}' is not a slot range (first-last, 0-16383)"))
}

/// Whether `name` is one of Herald's own settings (not an ignored Redis one).
fn herald_has(name: &str) -> bool {
    Config::default().own_entries().iter().any(|(n, _)| *n == name)
}

/// Reads `path` into `config`; an error names the file, the line and why.
pub fn load(config: &mut Config, path: &Path) -> Result<(), String> {
    load_nested(config, path, 0)?;
    config.file = Some(path.to_path_buf());
    Ok(())
}

/// Redis' `include` nests files; this deep is a loop, not a layout.
const INCLUDE_DEPTH: usize = 16;

fn load_nested(config: &mut Config, path: &Path, depth: usize) -> Result<(), String> {
    if depth > INCLUDE_DEPTH {
        return Err(format!("{}: include nested more than {INCLUDE_DEPTH} deep", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, line) in text.lines().enumerate() {
        let at = |why: String| format!("{}:{}: {why} (>>> '{}')", path.display(), i + 1, line.trim());
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = split_args(trimmed.as_bytes()).map_err(|_| at("unbalanced quotes".into()))?;
        let words: Vec<String> = words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        if words[0].eq_ignore_ascii_case("include") {
            let [included] = &words[1..] else { return Err(at("'include' takes one file".into())) };
            load_nested(config, Path::new(included), depth + 1)?;
            continue;
        }
        apply(config, &words[0], &words[1..]).map_err(at)?;
    }
    Ok(())
}

/// CONFIG REWRITE: the file with each runtime setting's line replaced by its
/// current value (or appended), and the `user` lines replaced by `users`
/// (ACL LIST's lines). Comments and other lines stay as they were.
pub(crate) fn rewrite(config: &Config, users: &[String]) -> Result<(), String> {
    let path = config.file.as_ref().ok_or("ERR The server is running without a config file")?;
    let old = std::fs::read_to_string(path).map_err(|e| format!("ERR Rewriting config file: {e}"))?;
    // Herald's runtime settings, then the Redis parameters it keeps only
    // to show back, as set at start or since (Redis rewrites those too).
    let own = config.own_entries().into_iter().filter(|(name, _)| super::changes_at_runtime(name));
    let foreign = config.foreign.iter().filter(|(name, _)| !super::redis::FILE_ONLY.contains(&name.as_str()));
    let current: Vec<(&str, String)> = own.chain(foreign.map(|(name, value)| (name.as_str(), value.clone()))).collect();
    let defaults = Config::default().entries();
    let mut written = Vec::new();
    let mut out = Vec::new();
    for line in old.lines() {
        let first = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if first == "user" {
            continue;
        }
        match current.iter().find(|(name, _)| *name == first) {
            Some((name, value)) if !written.contains(name) => {
                out.push(directive(name, value));
                written.push(*name);
            }
            Some(_) => {}
            None => out.push(line.to_string()),
        }
    }
    let changed = current
        .iter()
        .filter(|(name, value)| !written.contains(name) && defaults.iter().any(|(n, v)| n == name && v != value));
    let mut appended: Vec<String> = changed.map(|(name, value)| directive(name, value)).collect();
    appended.extend(users.iter().cloned());
    if !appended.is_empty() {
        if !out.iter().any(|l| l == GENERATED) {
            out.push(GENERATED.into());
        }
        out.extend(appended);
    }
    let tmp = path.with_extension("rewrite.tmp");
    std::fs::write(&tmp, out.join("\n") + "\n").map_err(|e| format!("ERR Rewriting config file: {e}"))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("ERR Rewriting config file: {e}"))
}

const GENERATED: &str = "# Generated by CONFIG REWRITE";

/// A directive line, quoting values with spaces (or empty ones).
fn directive(name: &str, value: &str) -> String {
    if value.is_empty() || (value.contains(' ') && name != "client-output-buffer-limit") {
        format!("{name} \"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{name} {value}")
    }
}

/// `host:port,host:port,…`, in one word or several: at least one.
fn addresses(name: &str, args: &[String]) -> Result<Vec<String>, String> {
    let list: Vec<String> =
        args.iter().flat_map(|a| a.split(',')).filter(|n| !n.is_empty()).map(String::from).collect();
    if list.is_empty() {
        return Err(format!("'{name}' needs host:port,host:port,…"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("herald-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("herald.conf");
        std::fs::write(
            &path,
            "# comment\nport 7000\ntimeout 30\nclient-output-buffer-limit pubsub 64mb 16mb 30\n\
             user alice on >pw \"&news:*\" +@pubsub\nrequirepass \"s3 cret\"\n",
        )
        .unwrap();
        let mut c = Config::default();
        load(&mut c, &path).unwrap();
        assert_eq!((c.port, c.idle_timeout.as_secs()), (7000, 30));
        assert_eq!(c.pubsub_output.hard, 64 << 20);
        assert_eq!(c.users, vec!["alice on >pw &news:* +@pubsub".to_string()]);
        assert_eq!(c.requirepass.as_deref(), Some("s3 cret"));

        // CONFIG REWRITE keeps comments, replaces changed values, appends the rest.
        c.set("timeout", "5").unwrap();
        c.set("maxclients", "77").unwrap();
        rewrite(&c, &["user alice on resetchannels -@all".into()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# comment\nport 7000\ntimeout 5\n"), "{text}");
        assert!(text.contains("requirepass \"s3 cret\"") && text.contains("maxclients 77"), "{text}");
        assert!(text.ends_with("user alice on resetchannels -@all\n") && !text.contains(">pw"), "{text}");
        let mut again = Config::default();
        load(&mut again, &path).unwrap();
        assert_eq!((again.idle_timeout.as_secs(), again.maxclients), (5, 77));

        std::fs::write(&path, "port 7000\n\nfrobnicate yes\n").unwrap();
        let err = load(&mut Config::default(), &path).unwrap_err();
        assert!(err.ends_with(":3: unknown directive 'frobnicate' (>>> 'frobnicate yes')"), "{err}");
        std::fs::write(&path, "timeout soon\n").unwrap();
        let err = load(&mut Config::default(), &path).unwrap_err();
        assert!(err.contains(":1: ") && err.contains("timeout"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
