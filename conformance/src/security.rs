//! §8: authentication, ACL command and channel rules (with users the kit
//! creates and deletes), TLS.

use crate::conn::Conn;
use crate::wire::{call_expect, expect_bytes};
use crate::{ensure, Outcome, Target, Verdict};

const NOPERM_CHANNEL: &[u8] =
    b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

/// Users created for a check, deleted when it ends.
struct Users {
    admin: Conn,
    names: Vec<String>,
}

impl Users {
    fn new(t: &Target) -> Result<Users, Verdict> {
        Ok(Users { admin: Conn::open(t)?, names: Vec::new() })
    }

    /// `ACL SETUSER name rules…`; not applicable if refused.
    fn set(&mut self, name: &str, rules: &[&str]) -> Outcome {
        let mut args = vec!["ACL", "SETUSER", name];
        args.extend(rules);
        self.admin.expect_ok(&args).map_err(|e| Verdict::NotApplicable(format!("ACL SETUSER refused: {e}")))?;
        if !self.names.iter().any(|n| n == name) {
            self.names.push(name.to_string());
        }
        Ok(())
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        let mut args = vec!["ACL", "DELUSER"];
        args.extend(self.names.iter().map(String::as_str));
        let _ = self.admin.call(&args);
    }
}

/// A fresh connection authenticated as `user`.
fn as_user(t: &Target, user: &str) -> Result<Conn, Verdict> {
    let mut c = Conn::unauthenticated(t)?;
    call_expect(&mut c, &["AUTH", user, "pw"], b"+OK\r\n")?;
    Ok(c)
}

pub(crate) fn authentication(t: &Target) -> Outcome {
    if let Some(auth) = t.auth() {
        let mut c = Conn::unauthenticated(t)?;
        call_expect(&mut c, &["PUBLISH", &t.channel("c"), "m"], b"-NOAUTH Authentication required.\r\n")?;
        call_expect(&mut c, &["AUTH", "not-the-password"], WRONGPASS)?;
        call_expect(&mut c, &auth, b"+OK\r\n")?;
    }
    let mut users = Users::new(t)?;
    let (user, off) = (format!("{}-user", t.nonce), format!("{}-off", t.nonce));
    users.set(&user, &["on", ">pw", "+@all", "allchannels"])?;
    users.set(&off, &["off", ">pw", "+@all", "allchannels"])?;
    let mut c = Conn::unauthenticated(t)?;
    call_expect(&mut c, &["AUTH", &user, "bad"], WRONGPASS)?;
    call_expect(&mut c, &["AUTH", &off, "pw"], WRONGPASS)?;
    call_expect(&mut c, &["AUTH", &user, "pw"], b"+OK\r\n")?;
    call_expect(&mut c, &["ACL", "WHOAMI"], format!("${}\r\n{user}\r\n", user.len()).as_bytes())?;
    call_expect(&mut c, &["RESET"], b"+RESET\r\n")?;
    if t.password.is_none() {
        call_expect(&mut c, &["ACL", "WHOAMI"], b"$7\r\ndefault\r\n")?;
    }
    Ok(())
}

pub(crate) fn channel_permissions(t: &Target) -> Outcome {
    let mut users = Users::new(t)?;
    let (user, nopub) = (format!("{}-chan", t.nonce), format!("{}-nopub", t.nonce));
    let ok_pattern = t.channel("ok*");
    let (ok, no) = (t.channel("ok1"), t.channel("no"));
    users.set(&user, &["on", ">pw", "+@all", "resetchannels", &format!("&{ok_pattern}")])?;
    users.set(&nopub, &["on", ">pw", "+@all", "-publish", "allchannels"])?;

    let mut c = as_user(t, &user)?;
    call_expect(&mut c, &["PUBLISH", &no, "m"], NOPERM_CHANNEL)?;
    call_expect(&mut c, &["PUBLISH", &ok, "m"], b":0\r\n")?;
    call_expect(&mut c, &["SPUBLISH", &no, "m"], NOPERM_CHANNEL)?;
    call_expect(&mut c, &["SUBSCRIBE", &no], NOPERM_CHANNEL)?;
    call_expect(&mut c, &["SSUBSCRIBE", &no], NOPERM_CHANNEL)?;
    // A pattern must be one of the user's, literally.
    call_expect(&mut c, &["PSUBSCRIBE", &t.channel("ok1*")], NOPERM_CHANNEL)?;
    // A pipelined run is checked publish by publish.
    c.write(
        &[
            herald_client::encode_command(&[b"PUBLISH", ok.as_bytes(), b"1"]),
            herald_client::encode_command(&[b"PUBLISH", no.as_bytes(), b"2"]),
            herald_client::encode_command(&[b"PUBLISH", ok.as_bytes(), b"3"]),
        ]
        .concat(),
    )?;
    for want in [b":0\r\n".as_slice(), NOPERM_CHANNEL, b":0\r\n"] {
        expect_bytes(&mut c, "a pipelined run with a forbidden channel", want)?;
    }
    let mut p = as_user(t, &user)?;
    let confirmation = format!("*3\r\n$10\r\npsubscribe\r\n${}\r\n{ok_pattern}\r\n:1\r\n", ok_pattern.len());
    call_expect(&mut p, &["PSUBSCRIBE", &ok_pattern], confirmation.as_bytes())?;

    let mut n = as_user(t, &nopub)?;
    call_expect(
        &mut n,
        &["PUBLISH", &ok, "m"],
        b"-NOPERM this user has no permissions to run the 'publish' command\r\n",
    )?;

    // Taking the channel away disconnects its subscriber.
    let mut s = as_user(t, &user)?;
    s.call(&["SUBSCRIBE", &ok])?;
    users.set(&user, &["resetchannels", &format!("&{}", t.channel("other"))])?;
    let said = s.closes().map_err(|e| format!("a subscriber whose channel was taken away: {e}"))?;
    ensure!(said.is_empty(), "a subscriber whose channel was taken away got {}", said.escape_ascii());
    Ok(())
}

pub(crate) fn tls(t: &Target) -> Outcome {
    if t.tls.is_none() {
        return Err(Verdict::NotApplicable("the target is not a TLS port (give --tls-ca-cert)".into()));
    }
    let mut c = Conn::open(t)?;
    call_expect(&mut c, &["PING"], b"+PONG\r\n")
}
