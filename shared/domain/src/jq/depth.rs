//! How deep jaq's lexer, parser and compiler recurse on a program, bounded from above
//! before any of them runs.
//!
//! jaq recurses once per level of nesting, and not only at brackets: `- - - .`, `try try .`,
//! `if`, `reduce`, `def`, `label`, `. as $x |`, string interpolation and every binary
//! operator chain (`1 + 1 + …`, `. | . | …`) each make the syntax tree one level deeper, and
//! a deep enough tree overflows the stack, which aborts the whole process. A program of
//! [`super::MAX_PROGRAM_BYTES`] can be 16,000 levels deep, far beyond any stack.
//!
//! [`units`] scans the program as jaq's lexer does (strings, interpolations and comments
//! included) and counts, per bracket block, every token that can add a level: each operator,
//! each of the keywords above, each `?`, and each comma except those that separate an
//! object's entries (a flat list). A block's depth is its own count plus the deepest block
//! inside it, plus two for the block itself. No path through jaq's tree can be deeper than
//! that, so a program whose count is within [`super::MAX_NESTING`] compiles within a known
//! stack (see [`super::COMPILE_STACK_BYTES`]); the count over-estimates, never under.

/// Tokens that are keywords able to nest a term inside another.
const NESTING_KEYWORDS: &[&str] = &[
    "def", "if", "then", "elif", "else", "try", "catch", "label", "reduce", "foreach", "as", "and",
    "or",
];

/// What each open block is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Paren,
    Bracket,
    Brace,
    /// `\(…)` inside a string: its `)` goes back into the string.
    Interpolation,
}

struct Block {
    kind: Kind,
    /// Tokens directly in this block that can add a level.
    units: usize,
    /// The deepest block closed inside this one.
    deepest_child: usize,
}

impl Block {
    fn new(kind: Kind) -> Self {
        Block {
            kind,
            units: 0,
            deepest_child: 0,
        }
    }

    /// The depth of this block once closed: its own units, the deepest child, and two for
    /// the block and the term that wraps it.
    fn depth(&self) -> usize {
        self.units + self.deepest_child + 2
    }
}

/// An upper bound of the nesting of `source`, in levels (see the module's documentation).
pub(super) fn units(source: &str) -> usize {
    let mut stack = vec![Block::new(Kind::Paren)];
    let mut chars = source.char_indices().peekable();
    let mut in_string = false;
    while let Some((at, c)) = chars.next() {
        if in_string {
            match c {
                '"' => in_string = false,
                '\\' => {
                    if let Some((_, next)) = chars.next()
                        && next == '('
                    {
                        stack.push(Block::new(Kind::Interpolation));
                        in_string = false;
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '#' => {
                // A comment, read exactly as jaq's lexer reads it: to the end of its line,
                // and on over every line whose text (one `\r` before its `\n` set aside)
                // ends with an odd number of backslashes.
                let mut rest = &source[at + 1..];
                loop {
                    let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
                    let line = line.strip_suffix('\r').unwrap_or(line);
                    rest = after;
                    let backslashes = line.chars().rev().take_while(|c| *c == '\\').count();
                    if backslashes.is_multiple_of(2) || rest.is_empty() {
                        break;
                    }
                }
                let resume = source.len() - rest.len();
                while chars.peek().is_some_and(|(i, _)| *i < resume) {
                    chars.next();
                }
            }
            '(' => stack.push(Block::new(Kind::Paren)),
            '[' => stack.push(Block::new(Kind::Bracket)),
            '{' => stack.push(Block::new(Kind::Brace)),
            ')' | ']' | '}' => {
                if stack.len() > 1
                    && let Some(block) = stack.pop()
                {
                    let depth = block.depth();
                    if let Some(parent) = stack.last_mut() {
                        parent.deepest_child = parent.deepest_child.max(depth);
                    }
                    if block.kind == Kind::Interpolation {
                        in_string = true;
                    }
                }
            }
            ',' => {
                if let Some(block) = stack.last_mut()
                    && block.kind != Kind::Brace
                {
                    block.units += 1;
                }
            }
            '?' => count(&mut stack),
            c if "|=!<>+-*/%".contains(c) => {
                // One operator token, however long (`|=`, `//=`, `!=`); a `-` after another
                // operator character starts a new token, as in jaq's lexer.
                while let Some((_, next)) = chars.peek()
                    && "|=!<>+*/%".contains(*next)
                {
                    chars.next();
                }
                count(&mut stack);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = at + c.len_utf8();
                while let Some((i, next)) = chars.peek()
                    && (next.is_ascii_alphanumeric() || *next == '_')
                {
                    end = i + next.len_utf8();
                    chars.next();
                }
                if NESTING_KEYWORDS.contains(&&source[at..end]) {
                    count(&mut stack);
                }
            }
            '$' | '@' | '.' => {
                // A variable, a format or a path: skip its name, so a name such as `$if` or
                // `.reduce` is not read as a keyword.
                while let Some((_, next)) = chars.peek()
                    && (next.is_ascii_alphanumeric() || *next == '_')
                {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    // Blocks left open count as if closed at the end.
    while stack.len() > 1 {
        if let Some(block) = stack.pop() {
            let depth = block.depth();
            if let Some(parent) = stack.last_mut() {
                parent.deepest_child = parent.deepest_child.max(depth);
            }
        }
    }
    stack.pop().map_or(0, |top| top.depth())
}

fn count(stack: &mut [Block]) {
    if let Some(block) = stack.last_mut() {
        block.units += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::units;

    #[test]
    fn operators_keywords_and_blocks_count() {
        assert_eq!(units("."), 2);
        assert_eq!(units(". | . | ."), 4);
        assert_eq!(units("- - ."), 4);
        assert_eq!(units("(.)"), 4);
        assert_eq!(units("if . then . else . end"), 5);
        assert_eq!(units("[1, 2, 3]"), 6);
        // An object's commas separate a flat list of entries.
        assert_eq!(units("{a: 1, b: 2, c: 3}"), 4);
        // `|=` and `//=` are one token each.
        assert_eq!(units(".a |= 1"), 3);
        assert_eq!(units(".a //= 1"), 3);
    }

    #[test]
    fn strings_comments_and_names_hide_what_is_inside_them() {
        assert_eq!(units(r#""( [ { | - if""#), 2);
        assert_eq!(units("# ((((( | | if\n."), 2);
        assert_eq!(units(".if | $reduce | @try"), 4);
        // An interpolation is a block inside the string.
        assert_eq!(units(r#""a\(. | .)b""#), 5);
        assert_eq!(units(r#""\"(""#), 2);
    }

    #[test]
    fn a_comment_goes_on_over_lines_ending_in_an_odd_number_of_backslashes() {
        // jaq reads the second line as part of the comment; counting it only over-estimates.
        assert!(units("# a \\\n | | | \n.") >= 2);
        // An even number ends the comment: the next line counts.
        assert_eq!(units("# a \\\\\n. | ."), 3);
        // A quote in a continued comment does not start a string that hides code after it.
        assert_eq!(units("# \\\n\"\n- - - ."), 5);
    }

    #[test]
    fn a_carriage_return_ends_a_comment_line_only_once_as_in_jaq() {
        // `\` `\r` `\r` `\n`: the line's text ends with `\r`, not a backslash, so the
        // comment ends there and the next line counts.
        assert_eq!(units("# \\\r\r\n- - ."), 4);
        // `\` `\r` `\n`: one `\r` set aside, an odd backslash: the next line is comment.
        assert!(units("#\\\r\n- - .") >= 2);
        // A quote on a continued comment line hides nothing after the comment.
        assert_eq!(units("#\\\r\\\n\"\n- - - ."), 5);
    }

    /// Every program jaq would parse deeper than the limit is refused, whatever comments,
    /// strings and line ends come before it: checked against jaq's own lexer on prefixes
    /// built from the characters that change how text is read.
    #[test]
    fn no_prefix_of_comments_and_strings_hides_depth_from_the_count() {
        let alphabet = ['#', '\\', '\\', '\r', '\r', '\n', '"', '(', ')', 'a'];
        let deep = "(".repeat(300) + "." + &")".repeat(300);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..50_000 {
            let mut prefix = String::new();
            for _ in 0..(seed % 9) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                prefix.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let program = format!("{prefix}{deep}");
            if units(&program) > super::super::MAX_NESTING {
                continue;
            }
            // The count let it through: then jaq's own lexer must not see the 300 levels
            // either (it would if the prefix hid them from the count only).
            let text = program.clone();
            let jaq_depth = std::thread::Builder::new()
                .stack_size(256 * 1024 * 1024)
                .spawn(move || {
                    jaq_core::load::Lexer::new(text.as_str())
                        .lex()
                        .map(|tokens| block_depth(&tokens))
                        .unwrap_or(0)
                })
                .unwrap()
                .join()
                .unwrap();
            let deep_in_jaq = jaq_depth >= 300;
            assert!(
                !deep_in_jaq,
                "{prefix:?} hides 300 levels from the count, not from jaq"
            );
        }
    }

    /// How deep jaq's lexer nested blocks and interpolations.
    fn block_depth(tokens: &[jaq_core::load::lex::Token<&str>]) -> usize {
        use jaq_core::load::lex::{StrPart, Tok};
        tokens
            .iter()
            .map(|t| match &t.1 {
                Tok::Block(inner) => 1 + block_depth(inner),
                Tok::Str(parts) => parts
                    .iter()
                    .map(|p| match p {
                        StrPart::Term(t) => 1 + block_depth(std::slice::from_ref(t)),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn unbalanced_brackets_do_not_hide_depth() {
        assert_eq!(units("((("), 8);
        assert_eq!(units(")))- - ."), 4);
    }
}
