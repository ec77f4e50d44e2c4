//! A second, independent reading of Redis' glob rules, for tests and fuzzing
//! to check [`super::matches`] against: the pattern is first parsed into
//! tokens (with Redis' edge cases for `[`, `\` and ranges), then matched by
//! dynamic programming. Slower, simpler, and sharing no code with the port.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Star,
    AnyOne,
    Byte(u8),
    /// A `[...]` class: (negated, inclusive ranges).
    Class(bool, Vec<(u8, u8)>),
}

fn tokenize(p: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => out.push(Token::Star),
            b'?' => out.push(Token::AnyOne),
            b'\\' if i + 1 < p.len() => {
                i += 1;
                out.push(Token::Byte(p[i]));
            }
            b'[' => {
                i += 1;
                let negated = p.get(i) == Some(&b'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                // Ends at `]`, or at the end of the pattern (unterminated:
                // the class holds what was read and the pattern ends there).
                while i < p.len() && p[i] != b']' {
                    if p[i] == b'\\' && i + 1 < p.len() {
                        ranges.push((p[i + 1], p[i + 1]));
                        i += 2;
                    } else if i + 2 < p.len() && p[i + 1] == b'-' {
                        let (a, b) = (p[i], p[i + 2]);
                        ranges.push((a.min(b), a.max(b)));
                        i += 3;
                    } else {
                        ranges.push((p[i], p[i]));
                        i += 1;
                    }
                }
                out.push(Token::Class(negated, ranges));
            }
            b => out.push(Token::Byte(b)),
        }
        i += 1;
    }
    out
}

fn token_matches(t: &Token, c: u8) -> bool {
    match t {
        Token::Star | Token::AnyOne => true,
        Token::Byte(b) => *b == c,
        Token::Class(negated, ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated,
    }
}

/// Redis' answer, computed the slow way. Redis never matches an empty
/// subject against a non-empty pattern (not even `*`).
pub fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    if subject.is_empty() {
        return pattern.is_empty();
    }
    let tokens = tokenize(pattern);
    // can[t][s]: tokens[t..] match subject[s..].
    let (nt, ns) = (tokens.len(), subject.len());
    let mut can = vec![vec![false; ns + 1]; nt + 1];
    can[nt][ns] = true;
    for t in (0..nt).rev() {
        for s in (0..=ns).rev() {
            can[t][s] = match &tokens[t] {
                Token::Star => can[t + 1][s] || (s < ns && can[t][s + 1]),
                tok => s < ns && token_matches(tok, subject[s]) && can[t + 1][s + 1],
            };
        }
    }
    can[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_on_edge_cases() {
        for (p, s, want) in [
            ("a[^", "ab", true),
            ("a[", "a[", false),
            // `]` can end a range, so `[a-]x` is one unterminated class.
            ("[a-]x", "]x", false),
            ("[a-]x]", "]", true),
            ("[a-]x]", "x", true),
            ("*", "", false),
            ("", "", true),
            ("a\\", "a\\", true),
            ("h[^e]llo", "hallo", true),
        ] {
            assert_eq!(matches(p.as_bytes(), s.as_bytes()), want, "reference: {p} vs {s}");
            assert_eq!(super::super::matches(p.as_bytes(), s.as_bytes()), want, "port: {p} vs {s}");
        }
    }
}
