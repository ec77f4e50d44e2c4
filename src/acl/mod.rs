//! Users and what they may do: Redis 7's ACL rules, for the commands and
//! channels Herald has. The table lives in the [`crate::registry`]; sessions
//! hold a snapshot of their user and are told when it changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::glob;

pub(crate) mod log;

/// One command rule, in the order given (`+@pubsub`, `-publish`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CommandRule {
    /// `+name`, `+name|sub` or `+@category`.
    Allow(String),
    Deny(String),
}

/// A user: whether it may log in, with which passwords, and what it may run
/// and publish or subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// SHA-256 of each password; the passwords themselves are never kept.
    passwords: Vec<[u8; 32]>,
    /// Whether rules start from every command (`+@all`) or from none.
    all_commands: bool,
    commands: Vec<CommandRule>,
    all_channels: bool,
    channels: Vec<Bytes>,
    /// Key patterns and their permissions (`~k` both, `%R~k` read): Herald
    /// keeps no keys, but ACL LIST shows them back as Redis does.
    keys: Vec<KeyPattern>,
    /// `sanitize-payload` (true) or `skip-sanitize-payload` (false): about
    /// RESTORE payloads, which Herald has none of; kept and shown back.
    sanitize: Option<bool>,
}

/// A key pattern and what it allows (`~k`: read and write; `%R~k`: read).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPattern {
    pattern: String,
    permissions: u8,
}

impl KeyPattern {
    const READ: u8 = 1;
    const WRITE: u8 = 2;

    /// `~*`, `allkeys`: every key, both ways (Redis' ALLKEYS flag).
    fn all() -> KeyPattern {
        KeyPattern { pattern: "*".into(), permissions: KeyPattern::READ | KeyPattern::WRITE }
    }

    fn is_all(&self) -> bool {
        *self == KeyPattern::all()
    }

    /// As ACL LIST shows it.
    fn describe(&self) -> String {
        match self.permissions {
            KeyPattern::READ => format!("%R~{}", self.pattern),
            KeyPattern::WRITE => format!("%W~{}", self.pattern),
            _ => format!("~{}", self.pattern),
        }
    }
}

/// `%R~k`'s `R~k`: permissions R and W (each once, any case), then `~` and
/// the pattern; Redis also takes them with no `~`, as an empty pattern.
fn parse_permissions(rule: &str) -> Option<(u8, &str)> {
    let mut permissions = 0;
    for (at, c) in rule.char_indices() {
        match c.to_ascii_uppercase() {
            'R' if permissions & KeyPattern::READ == 0 => permissions |= KeyPattern::READ,
            'W' if permissions & KeyPattern::WRITE == 0 => permissions |= KeyPattern::WRITE,
            '~' if permissions != 0 => return Some((permissions, &rule[at + 1..])),
            _ => return None,
        }
    }
    (permissions != 0).then_some((permissions, ""))
}

/// The error `ACL SETUSER` and the configuration give for a bad rule.
pub(crate) fn rule_error(rule: &str, why: &str) -> String {
    // Redis prints the rule as a C string: up to a NUL byte.
    // (acl/ sits below cmd/, so not through `cmd::c_text`.)
    let rule = rule.split('\0').next().unwrap_or_default();
    format!("ERR Error in ACL SETUSER modifier '{rule}': {why}")
}

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no password, no
    /// commands, no channels (Redis 7's `acl-pubsub-default resetchannels`).
    pub(crate) fn new(name: &str) -> User {
        User {
            name: name.into(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            all_commands: false,
            commands: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
            keys: Vec::new(),
            sanitize: None,
        }
    }

    /// The default user: everything allowed; `requirepass` sets its password.
    pub(crate) fn default_user(requirepass: Option<&str>) -> User {
        let mut u = User::new("default");
        for rule in ["on", "~*", "&*", "+@all"] {
            u.apply(rule).expect("valid rule");
        }
        match requirepass {
            Some(pass) => u.passwords.push(sha256(pass.as_bytes())),
            None => u.nopass = true,
        }
        u
    }

    /// Applies one rule, as `ACL SETUSER` does.
    pub(crate) fn apply(&mut self, rule: &str) -> Result<(), String> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            // An empty rule is no rule, as in Redis.
            "" => {}
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            // `~*` and `&*` are the keywords' other names, so they are taken
            // even after `allkeys` or `allchannels`.
            "allkeys" | "~*" => self.keys = vec![KeyPattern::all()],
            "resetkeys" => self.keys.clear(),
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => self.reset_commands(true),
            "nocommands" | "-@all" => self.reset_commands(false),
            "reset" => {
                *self = User { name: std::mem::take(&mut self.name), sanitize: Some(true), ..User::new("") };
            }
            "sanitize-payload" => self.sanitize = Some(true),
            "skip-sanitize-payload" => self.sanitize = Some(false),
            _ => return self.apply_prefixed(rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, rule: &str) -> Result<(), String> {
        let Some(first) = rule.chars().next() else {
            return Err(rule_error(rule, "Syntax error"));
        };
        let rest = &rule[first.len_utf8()..];
        match first {
            '>' => {
                let hash = sha256(rest.as_bytes());
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            '<' => self.remove_password(rule, sha256(rest.as_bytes()))?,
            '#' | '!' => {
                let Some(hash) = parse_hash(rest) else {
                    return Err(rule_error(rule, "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"));
                };
                if first == '#' {
                    if !self.passwords.contains(&hash) {
                        self.passwords.push(hash);
                    }
                    self.nopass = false;
                } else {
                    self.remove_password(rule, hash)?;
                }
            }
            '~' | '%' => {
                if self.keys.first().is_some_and(KeyPattern::is_all) {
                    return Err(rule_error(rule, "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"));
                }
                let (permissions, pattern) = match first {
                    '~' => (KeyPattern::READ | KeyPattern::WRITE, rest),
                    _ => parse_permissions(rest).ok_or_else(|| rule_error(rule, "Syntax error"))?,
                };
                if pattern.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b) {
                    return Err(rule_error(rule, "Syntax error"));
                }
                let added = KeyPattern { pattern: pattern.into(), permissions };
                if added.is_all() {
                    self.keys = vec![added];
                } else if let Some(known) = self.keys.iter_mut().find(|k| k.pattern == pattern) {
                    known.permissions |= permissions;
                } else {
                    self.keys.push(added);
                }
            }
            '&' => {
                if self.all_channels {
                    return Err(rule_error(rule, "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"));
                }
                if rest.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b) {
                    return Err(rule_error(rule, "Syntax error"));
                }
                if rest == "*" {
                    self.all_channels = true;
                    self.channels.clear();
                } else if !self.channels.iter().any(|c| c == rest.as_bytes()) {
                    self.channels.push(Bytes::copy_from_slice(rest.as_bytes()));
                }
            }
            '+' | '-' => {
                let name = rest.to_ascii_lowercase();
                let known = match name.strip_prefix('@') {
                    Some(category) => crate::redis::categories().contains(&category),
                    None => crate::redis::known(&name),
                };
                if !known {
                    return Err(rule_error(rule, "Unknown command or category name in ACL"));
                }
                self.commands.push(if first == '+' { CommandRule::Allow(name) } else { CommandRule::Deny(name) });
            }
            _ => return Err(rule_error(rule, "Syntax error")),
        }
        Ok(())
    }

    fn sanitize_flag(&self) -> Option<&'static str> {
        self.sanitize.map(|on| if on { "sanitize-payload" } else { "skip-sanitize-payload" })
    }

    /// `<password` and `!hash`: Redis refuses to remove one the user does
    /// not have.
    fn remove_password(&mut self, rule: &str, hash: [u8; 32]) -> Result<(), String> {
        let Some(at) = self.passwords.iter().position(|h| *h == hash) else {
            return Err(rule_error(rule, "The password you are trying to remove from the user does not exist"));
        };
        self.passwords.remove(at);
        Ok(())
    }

    fn reset_commands(&mut self, all: bool) {
        self.all_commands = all;
        self.commands.clear();
    }

    /// Whether `password` is one of this user's (any, with `nopass`).
    pub(crate) fn accepts(&self, password: &[u8]) -> bool {
        self.enabled && (self.nopass || self.passwords.contains(&sha256(password)))
    }

    /// Whether it may run `full_name` (`publish`, `client|list`), a command
    /// in `categories` (`@pubsub`, …).
    pub(crate) fn may_run(&self, full_name: &str, categories: &[&str]) -> bool {
        let base = full_name.split('|').next().unwrap_or(full_name);
        let mut allowed = self.all_commands;
        for rule in &self.commands {
            let (name, allow) = match rule {
                CommandRule::Allow(n) => (n, true),
                CommandRule::Deny(n) => (n, false),
            };
            let hit = match name.strip_prefix('@') {
                Some(category) => categories.iter().any(|c| c.strip_prefix('@') == Some(category)),
                None => name == full_name || name == base,
            };
            if hit {
                allowed = allow;
            }
        }
        allowed
    }

    /// Whether it may publish or subscribe to `channel`; for a pattern
    /// subscription, whether the pattern is literally one of its own.
    pub(crate) fn may_use_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| if is_pattern { p == channel } else { glob::matches(p, channel) })
    }

    /// The user as ACL LIST shows it.
    pub(crate) fn describe(&self) -> String {
        let mut words = vec!["user".to_string(), self.name.clone(), if self.enabled { "on" } else { "off" }.into()];
        if self.nopass {
            words.push("nopass".into());
        }
        words.extend(self.sanitize_flag().map(String::from));
        words.extend(self.passwords.iter().map(|h| format!("#{}", hex(h))));
        words.extend(self.keys.iter().map(KeyPattern::describe));
        if self.all_channels {
            words.push("&*".into());
        } else {
            words.push("resetchannels".into());
            words.extend(self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))));
        }
        words.push(self.command_rules());
        words.join(" ")
    }

    /// The command rules as Redis 7.0 describes them (its
    /// `ACLDescribeSelectorCommandRules`): not as given, but recomputed over
    /// Redis' command table — `+@all` or `-@all`, then each category in
    /// Redis' order where most of its commands differ from that start, then
    /// each command (a container before its subcommands) still different.
    pub(crate) fn command_rules(&self) -> String {
        use std::collections::HashMap;
        let table = crate::redis::all();
        let mine: HashMap<&str, bool> = table.iter().map(|(name, c)| (*name, self.may_run(name, &c.acl))).collect();
        let mut shown: HashMap<&str, bool> = table.iter().map(|(name, _)| (*name, self.all_commands)).collect();
        // Setting a container sets its subcommands, as Redis' bits do.
        let set = |shown: &mut HashMap<&str, bool>, name: &str, allow: bool| {
            for (other, _) in
                table.iter().filter(|(o, _)| *o == name || o.strip_prefix(name).is_some_and(|r| r.starts_with('|')))
            {
                shown.insert(other, allow);
            }
        };
        let mut rules = vec![if self.all_commands { "+@all" } else { "-@all" }.to_string()];
        let add = !self.all_commands;
        for category in crate::redis::categories() {
            let tag = format!("@{category}");
            let members: Vec<&str> =
                table.iter().filter(|(_, c)| c.acl.contains(&tag.as_str())).map(|(n, _)| *n).collect();
            let on = members.iter().filter(|n| mine[**n]).count();
            let off = members.len() - on;
            if (add && on > off) || (!add && off > on) {
                rules.push(format!("{}@{category}", if add { '+' } else { '-' }));
                for name in members {
                    set(&mut shown, name, add);
                }
            }
        }
        for (name, _) in table {
            if mine[name] != shown[name] {
                rules.push(format!("{}{name}", if mine[name] { '+' } else { '-' }));
                set(&mut shown, name, mine[name]);
            }
        }
        rules.join(" ")
    }
}

impl User {
    /// ACL GETUSER's fields, in Redis 7.0's order.
    pub(crate) fn getuser(&self) -> Vec<(&'static str, GetUserField)> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }.to_string()];
        if self.nopass {
            flags.push("nopass".into());
        }
        flags.extend(self.sanitize_flag().map(String::from));
        let channels = if self.all_channels {
            "&*".to_string()
        } else {
            self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
        };
        vec![
            ("flags", GetUserField::Set(flags)),
            ("passwords", GetUserField::List(self.passwords.iter().map(|h| hex(h)).collect())),
            ("commands", GetUserField::Text(self.command_rules())),
            ("keys", GetUserField::Text(self.keys.iter().map(KeyPattern::describe).collect::<Vec<_>>().join(" "))),
            ("channels", GetUserField::Text(channels)),
            ("selectors", GetUserField::List(Vec::new())),
        ]
    }
}

/// One ACL GETUSER value: a list (flags, passwords) or a rule string.
pub(crate) enum GetUserField {
    List(Vec<String>),
    /// A set in RESP3, as Redis sends the flags.
    Set(Vec<String>),
    Text(String),
}

/// Every user, by name (ACL LIST and USERS list them sorted, as Redis).
#[derive(Debug, Clone)]
pub(crate) struct Users(BTreeMap<String, Arc<User>>);

impl Users {
    /// The default user plus the `user …` lines of the configuration.
    pub(crate) fn new(requirepass: Option<&str>, lines: &[String]) -> Result<Users, String> {
        let mut users = Users(BTreeMap::new());
        users.0.insert("default".into(), Arc::new(User::default_user(requirepass)));
        for line in lines {
            let mut words = line.split_whitespace();
            let name = words.next().ok_or("ERR a user line needs a name")?;
            users.set(name, words)?;
        }
        Ok(users)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<User>> {
        self.0.get(name)
    }

    /// ACL SETUSER: creates the user if needed, applies every rule or none.
    pub(crate) fn set<'a>(
        &mut self,
        name: &str,
        rules: impl IntoIterator<Item = &'a str>,
    ) -> Result<Arc<User>, String> {
        let mut user = self.0.get(name).map_or_else(|| User::new(name), |u| (**u).clone());
        for rule in rules {
            user.apply(rule)?;
        }
        let user = Arc::new(user);
        self.0.insert(name.into(), user.clone());
        Ok(user)
    }

    /// ACL DELUSER of one user: whether it existed.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.0.remove(name).is_some()
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<User>> {
        self.0.values()
    }

    /// Sets the default user's one password (CONFIG SET requirepass; empty
    /// means none).
    pub(crate) fn set_requirepass(&mut self, pass: &str) -> Arc<User> {
        let rules =
            if pass.is_empty() { vec!["nopass".to_string()] } else { vec!["resetpass".into(), format!(">{pass}")] };
        self.set("default", rules.iter().map(String::as_str)).expect("valid rules")
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("alice");
        for r in rules.split_whitespace() {
            u.apply(r).unwrap();
        }
        u
    }

    #[test]
    fn describes_as_redis_lists() {
        // Each line as redis-server 7.0.15 printed it for the same rules.
        let alice = user("on >pw &news:* +@pubsub");
        assert_eq!(
            alice.describe(),
            "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 resetchannels &news:* -@all +@pubsub"
        );
        assert_eq!(user("").describe(), "user alice off resetchannels -@all");
        assert_eq!(
            user("on nopass allchannels +publish -@all +subscribe ~k*").describe(),
            "user alice on nopass ~k* &* -@all +subscribe"
        );
        assert_eq!(User::default_user(None).describe().replace("alice", ""), "user default on nopass ~* &* +@all");
    }

    #[test]
    fn commands_and_channels() {
        let u = user("on nopass &news:* +@pubsub -publish +client|list");
        assert!(u.may_run("subscribe", &["@pubsub", "@slow"]));
        assert!(!u.may_run("publish", &["@pubsub", "@fast"]));
        assert!(u.may_run("client|list", &["@admin"]));
        assert!(!u.may_run("client|kill", &["@admin"]));
        assert!(!u.may_run("ping", &["@connection"]));
        assert!(u.may_use_channel(b"news:1", false));
        assert!(!u.may_use_channel(b"sports", false));
        assert!(u.may_use_channel(b"news:*", true));
        assert!(!u.may_use_channel(b"news:1*", true), "patterns must be literally allowed");
        assert!(u.accepts(b"anything"));
        assert!(!user("off nopass").accepts(b"x"));
        assert!(user("on >a >b").accepts(b"b"));
        assert!(!user("on >a >b <b").accepts(b"b"));
    }

    #[test]
    fn bad_rules_name_themselves() {
        let mut u = User::new("x");
        assert_eq!(u.apply("bogus").unwrap_err(), "ERR Error in ACL SETUSER modifier 'bogus': Syntax error");
        assert!(u.apply("+nosuchcommand").unwrap_err().contains("Unknown command"));
        assert!(u.apply("#abc").is_err());
    }
}
