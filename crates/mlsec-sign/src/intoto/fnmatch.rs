//! Python's `fnmatch.fnmatchcase`, which in-toto artifact rules use: `*`
//! matches any run of characters *including* `/`, `?` one character,
//! `[seq]` / `[!seq]` a set with ranges, and an unclosed `[` is a literal.
//! Hand-written because glob crates treat `/` and `**` specially, and a rule
//! must select exactly the artifacts the reference verifier selects.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Set {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if out.last() != Some(&Token::AnyRun) {
                    out.push(Token::AnyRun);
                }
                i += 1;
            }
            '?' => {
                out.push(Token::AnyOne);
                i += 1;
            }
            '[' => match parse_set(&chars, i + 1) {
                Some((token, next)) => {
                    out.push(token);
                    i = next;
                }
                None => {
                    out.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                out.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    out
}

/// Parses a set starting after `[`; `None` when it is never closed. As in
/// Python, a `]` right after `[` or `[!` is a member, not the end.
fn parse_set(chars: &[char], mut i: usize) -> Option<(Token, usize)> {
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let start = i;
    let mut items = Vec::new();
    loop {
        let c = *chars.get(i)?;
        if c == ']' && i > start {
            return Some((Token::Set { negated, items }, i + 1));
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            // Python drops reversed ranges such as `[z-a]`.
            if c <= end {
                items.push((c, end));
            }
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
}

fn token_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyOne => true,
        Token::AnyRun => unreachable!("runs are matched by the caller"),
        Token::Set { negated, items } => {
            items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
    }
}

/// Whether `name` matches `pattern` (case-sensitive, whole string).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let tokens = tokenize(pattern);
    let text: Vec<char> = name.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear in
    // practice and never exponential, whatever the pattern.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < tokens.len() && tokens[p] == Token::AnyRun {
            star = Some((p, t));
            p += 1;
        } else if p < tokens.len() && token_matches(&tokens[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    tokens[p..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn python_semantics() {
        assert!(fnmatch("model/weights.bin", "model/*"));
        assert!(fnmatch("a/b/c", "*"));
        assert!(fnmatch("a/b/c", "a*c"));
        assert!(!fnmatch("model/weights.bin", "model/*.txt"));
        assert!(fnmatch("x1", "x?"));
        assert!(!fnmatch("x12", "x?"));
        assert!(fnmatch("b", "[abc]"));
        assert!(fnmatch("d", "[!abc]"));
        assert!(!fnmatch("a", "[!abc]"));
        assert!(fnmatch("]", "[]]"));
        assert!(fnmatch("5", "[0-9]"));
        assert!(fnmatch("[x", "[x"));
        assert!(fnmatch("-", "[a-]"));
        assert!(!fnmatch("Model", "model"));
        assert!(fnmatch("", "*"));
        assert!(!fnmatch("", "?"));
        assert!(fnmatch("a**b", "a**b"));
    }
}
