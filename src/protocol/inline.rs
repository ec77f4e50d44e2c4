//! Inline commands (`PING\r\n`, `SUBSCRIBE "a b" c\r\n`), split the way
//! Redis' `sdssplitargs` splits them.

use bytes::Bytes;

/// The line had an open quote, or a closing quote not followed by a space.
#[derive(Debug, PartialEq, Eq)]
pub struct UnbalancedQuotes;

fn at(line: &[u8], i: usize) -> u8 {
    // C strings end in NUL; Redis stops there, and so do we.
    line.get(i).copied().unwrap_or(0)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits one inline line (without its `\n`) into arguments.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, UnbalancedQuotes> {
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while at(line, p) != 0 && is_space(at(line, p)) {
            p += 1;
        }
        if at(line, p) == 0 {
            return Ok(args);
        }
        let (mut in_double, mut in_single) = (false, false);
        let mut current = Vec::new();
        loop {
            let c = at(line, p);
            if in_double {
                if c == 0 {
                    return Err(UnbalancedQuotes);
                }
                if c == b'\\' && at(line, p + 1) == b'x' {
                    if let (Some(hi), Some(lo)) = (hex(at(line, p + 2)), hex(at(line, p + 3))) {
                        current.push(hi * 16 + lo);
                        p += 4;
                        continue;
                    }
                }
                if c == b'\\' && at(line, p + 1) != 0 {
                    p += 1;
                    current.push(match at(line, p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    let next = at(line, p + 1);
                    if next != 0 && !is_space(next) {
                        return Err(UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == 0 {
                    return Err(UnbalancedQuotes);
                }
                if c == b'\\' && at(line, p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    let next = at(line, p + 1);
                    if next != 0 && !is_space(next) {
                        return Err(UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => current.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_args(s.as_bytes()).unwrap().iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(split("PING"), ["PING"]);
        assert_eq!(split("  set  a   b "), ["set", "a", "b"]);
        assert_eq!(split(r#"publish "a b" 'c d'"#), ["publish", "a b", "c d"]);
        assert_eq!(split(r#""\x41\n" 'it\'s'"#), ["A\n", "it's"]);
        assert_eq!(split(r#""""#), [""]);
        assert!(split("").is_empty());
    }

    #[test]
    fn unbalanced() {
        assert_eq!(split_args(b"\"abc"), Err(UnbalancedQuotes));
        assert_eq!(split_args(b"'abc"), Err(UnbalancedQuotes));
        assert_eq!(split_args(b"\"a\"b"), Err(UnbalancedQuotes));
    }
}
