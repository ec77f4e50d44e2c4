//! Redis' glob matching (`stringmatchlen`), byte for byte.
//!
//! Patterns and channel names are arbitrary bytes. Redis reads one byte past
//! the end of a pattern (the C string's NUL); `at` returns 0 there so the
//! edge cases (`[` left open, trailing `\`) come out as Redis' do.

use std::borrow::Cow;

#[doc(hidden)]
pub(crate) mod reference;

/// Does `pattern` match `subject` under Redis' glob rules?
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    let mut give_up = false;
    match_from(pattern, subject, &mut give_up)
}

fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

/// `give_up` is Redis' `skipLongerMatches`: once a `*` failed against every
/// suffix, a longer match for an outer `*` cannot succeed either, which keeps
/// the search polynomial.
fn match_from(pattern: &[u8], subject: &[u8], give_up: &mut bool) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    let (plen, slen) = (pattern.len(), subject.len());
    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                // `at` is 0 past the end: no bounds test needed (a redundant
                // one was a mutation no test could tell apart).
                while at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if plen - p == 1 {
                    return true;
                }
                while s < slen {
                    if match_from(&pattern[p + 1..], &subject[s..], give_up) {
                        return true;
                    }
                    if *give_up {
                        return false;
                    }
                    s += 1;
                }
                *give_up = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(pattern, p) == b'^';
                if negate {
                    p += 1;
                }
                let c = subject[s];
                let mut hit = false;
                loop {
                    if at(pattern, p) == b'\\' && plen - p >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            hit = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if p >= plen {
                        // An unterminated class: Redis steps back onto the
                        // last byte, but any `p` past the end stops the
                        // match here the same way.
                        break;
                    } else if plen - p >= 3 && pattern[p + 1] == b'-' {
                        let (mut lo, mut hi) = (pattern[p], pattern[p + 2]);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        p += 2;
                        if c >= lo && c <= hi {
                            hit = true;
                        }
                    } else if pattern[p] == c {
                        hit = true;
                    }
                    p += 1;
                }
                if negate {
                    hit = !hit;
                }
                if !hit {
                    return false;
                }
                s += 1;
            }
            b'\\' if plen - p >= 2 => {
                p += 1;
                if pattern[p] != subject[s] {
                    return false;
                }
                s += 1;
            }
            b => {
                if b != subject[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            // `at` is 0 past the end: the `*` test is the bounds test too
            // (a separate `p < plen` was a mutant no test could kill).
            while at(pattern, p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= plen && s == slen
}

/// The bytes every matching subject must start with: the pattern up to its
/// first special character (escapes resolved). Used to index patterns;
/// borrowed unless an escape comes first.
pub(crate) fn literal_prefix(pattern: &[u8]) -> Cow<'_, [u8]> {
    let end = pattern.iter().position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\')).unwrap_or(pattern.len());
    if pattern.get(end) != Some(&b'\\') {
        return Cow::Borrowed(&pattern[..end]);
    }
    let mut out = pattern[..end].to_vec();
    let mut i = end;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' | b'[' => break,
            b'\\' if i + 1 < pattern.len() => {
                out.push(pattern[i + 1]);
                i += 2;
            }
            // A trailing backslash matches itself.
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_examples() {
        let yes: &[(&str, &str)] = &[
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("*", "x"),
            ("a**", "a"),
            ("news:*", "news:sport"),
            ("user:*:alerts", "user:42:alerts"),
            ("h\\*llo", "h*llo"),
            ("a[\\]]", "a]"),
            ("ab\\", "ab\\"),
            // The `^` is the negation, not a member of the class.
            ("[^a]", "^"),
            // A range far into a long pattern.
            ("xxxxxxxx[a-c]", "xxxxxxxxb"),
        ];
        for (p, s) in yes {
            assert!(matches(p.as_bytes(), s.as_bytes()), "{p} should match {s}");
        }
        let no: &[(&str, &str)] = &[
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("*", ""),
            ("news:*", "news"),
            ("a?", "a"),
            ("h\\*llo", "hello"),
            ("abc", "abcd"),
            // An unterminated class matches nothing, as in Redis.
            ("a[", "a["),
        ];
        for (p, s) in no {
            assert!(!matches(p.as_bytes(), s.as_bytes()), "{p} should not match {s}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = "a*".repeat(30) + "b";
        let subject = "a".repeat(200);
        assert!(!matches(pattern.as_bytes(), subject.as_bytes()));
    }

    #[test]
    fn prefixes() {
        assert_eq!(&*literal_prefix(b"events:*:x"), b"events:");
        assert_eq!(&*literal_prefix(b"a\\*b?"), b"a*b");
        assert_eq!(&*literal_prefix(b"*"), b"");
        assert_eq!(&*literal_prefix(b"plain"), b"plain");
        assert_eq!(&*literal_prefix(b"ab\\*c\\[d[x]"), b"ab*c[d");
        assert_eq!(&*literal_prefix(b"a\\"), b"a\\", "a trailing backslash is itself");
        assert!(matches!(literal_prefix(b"news.*"), Cow::Borrowed(b"news.")), "no copy without an escape");
    }
}
