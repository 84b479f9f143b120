//! The xm configuration syntax: a small subset of Python assignments.
//!
//! ```text
//! file   := { stmt ( NEWLINE | ';' ) }
//! stmt   := IDENT '=' value
//! value  := STRING { STRING }          adjacent strings concatenate, as in Python
//!         | ['-'] INT                  decimal or 0x hex
//!         | IDENT                      True, False, None, or any bare name
//!         | '[' [ value { ',' value } [','] ] ']'
//!         | '(' [ value { ',' value } [','] ] ')'     a tuple reads as a list
//! ```
//!
//! Newlines inside brackets are ignored, so lists may span lines; `#` starts a comment;
//! a backslash at the end of a line joins it with the next. Anything else (floats,
//! expressions, triple-quoted strings) is an error at its position, never a panic.

use std::fmt;

use super::{ParseError, Problem};

/// A 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value on the right of `=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A string literal (escapes resolved, adjacent literals joined).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A bare name: `True`, `False`, `None` or anything else.
    Ident(String),
    /// A list or tuple.
    List(Vec<Item>),
}

impl Value {
    /// The type's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Ident(_) => "a bare name",
            Value::List(_) => "a list",
        }
    }
}

/// A value with the position where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// One `key = value` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The key.
    pub key: String,
    /// Where the key starts.
    pub pos: Pos,
    /// The value.
    pub value: Item,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Punct(char),
    Newline,
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::Str(_) => "a string".to_string(),
            Tok::Int(i) => format!("integer {i}"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of file".to_string(),
        }
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
    depth: u32,
    file: &'a str,
}

impl<'a> Lexer<'a> {
    fn err(&self, pos: Pos, problem: Problem) -> ParseError {
        ParseError::new(self.file, pos, problem)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.pos.line = self.pos.line.saturating_add(1);
            self.pos.col = 1;
        } else {
            self.pos.col = self.pos.col.saturating_add(1);
        }
        Some(c)
    }

    fn next_tok(&mut self) -> Result<(Pos, Tok), ParseError> {
        loop {
            let pos = self.pos;
            let Some(&c) = self.chars.peek() else {
                return Ok((pos, Tok::Eof));
            };
            match c {
                ' ' | '\t' | '\r' | '\x0c' => {
                    self.bump();
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.bump();
                    }
                }
                '\\' => {
                    self.bump();
                    // A line continuation: backslash, optional '\r', newline.
                    if self.chars.peek() == Some(&'\r') {
                        self.bump();
                    }
                    if self.bump() != Some('\n') {
                        return Err(self.err(pos, Problem::UnexpectedChar('\\')));
                    }
                }
                '\n' => {
                    self.bump();
                    if self.depth == 0 {
                        return Ok((pos, Tok::Newline));
                    }
                }
                '"' | '\'' => return self.string(pos, c),
                '0'..='9' => return self.int(pos),
                c if c == '_' || c.is_ascii_alphabetic() => {
                    let mut s = String::new();
                    while let Some(&c) = self.chars.peek() {
                        if c == '_' || c.is_ascii_alphanumeric() {
                            s.push(c);
                            self.bump();
                        } else {
                            break;
                        }
                    }
                    return Ok((pos, Tok::Ident(s)));
                }
                '[' | '(' => {
                    self.bump();
                    self.depth = self.depth.saturating_add(1);
                    return Ok((pos, Tok::Punct(c)));
                }
                ']' | ')' => {
                    self.bump();
                    self.depth = self.depth.saturating_sub(1);
                    return Ok((pos, Tok::Punct(c)));
                }
                '=' | ',' | ';' | '-' => {
                    self.bump();
                    return Ok((pos, Tok::Punct(c)));
                }
                other => return Err(self.err(pos, Problem::UnexpectedChar(other))),
            }
        }
    }

    fn string(&mut self, pos: Pos, quote: char) -> Result<(Pos, Tok), ParseError> {
        self.bump();
        let mut s = String::new();
        if self.chars.peek() == Some(&quote) {
            self.bump();
            if self.chars.peek() == Some(&quote) {
                return Err(self.err(pos, Problem::TripleQuoted));
            }
            return Ok((pos, Tok::Str(s)));
        }
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.err(pos, Problem::UnterminatedString)),
                Some(c) if c == quote => return Ok((pos, Tok::Str(s))),
                Some('\\') => match self.bump() {
                    None => return Err(self.err(pos, Problem::UnterminatedString)),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('0') => s.push('\0'),
                    Some('\n') => {}
                    Some(c @ ('\\' | '\'' | '"')) => s.push(c),
                    // Python keeps unknown escapes as written.
                    Some(c) => {
                        s.push('\\');
                        s.push(c);
                    }
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn int(&mut self, pos: Pos) -> Result<(Pos, Tok), ParseError> {
        let mut text = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        let digits = text.replace('_', "");
        let parsed = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i64::from_str_radix(hex, 16),
            None => digits.parse::<i64>(),
        };
        match parsed {
            Ok(v) => Ok((pos, Tok::Int(v))),
            Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
                Err(self.err(pos, Problem::IntegerOverflow(text)))
            }
            Err(_) => Err(self.err(pos, Problem::BadNumber(text))),
        }
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Pos, Tok)>,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<&(Pos, Tok), ParseError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_tok()?);
        }
        Ok(self.peeked.get_or_insert((Pos::default(), Tok::Eof)))
    }

    fn next(&mut self) -> Result<(Pos, Tok), ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_tok(),
        }
    }

    fn unexpected(&self, pos: Pos, found: &Tok, expected: &'static str) -> ParseError {
        self.lexer.err(
            pos,
            Problem::UnexpectedToken {
                found: found.describe(),
                expected,
            },
        )
    }

    fn file(&mut self) -> Result<Vec<Assignment>, ParseError> {
        let mut out = Vec::new();
        loop {
            let (pos, tok) = self.next()?;
            match tok {
                Tok::Eof => return Ok(out),
                Tok::Newline | Tok::Punct(';') => continue,
                Tok::Ident(key) => {
                    let (eq_pos, eq) = self.next()?;
                    if eq != Tok::Punct('=') {
                        return Err(self.unexpected(eq_pos, &eq, "`=` after the key"));
                    }
                    let value = self.value(0)?;
                    let (end_pos, end) = self.next()?;
                    if !matches!(end, Tok::Newline | Tok::Eof | Tok::Punct(';')) {
                        return Err(self.unexpected(end_pos, &end, "end of line after the value"));
                    }
                    out.push(Assignment { key, pos, value });
                    if end == Tok::Eof {
                        return Ok(out);
                    }
                }
                other => return Err(self.unexpected(pos, &other, "a `key = value` line")),
            }
        }
    }

    fn value(&mut self, nesting: u32) -> Result<Item, ParseError> {
        let (pos, tok) = self.next()?;
        let value = match tok {
            Tok::Str(mut s) => {
                while let (_, Tok::Str(_)) = self.peek()? {
                    if let (_, Tok::Str(more)) = self.next()? {
                        s.push_str(&more);
                    }
                }
                Value::Str(s)
            }
            Tok::Int(i) => Value::Int(i),
            Tok::Punct('-') => match self.next()? {
                (_, Tok::Int(i)) => Value::Int(-i),
                (p, other) => return Err(self.unexpected(p, &other, "a number after `-`")),
            },
            Tok::Ident(s) => Value::Ident(s),
            Tok::Punct(open @ ('[' | '(')) => {
                // Deeply nested input must not overflow the stack.
                if nesting >= 16 {
                    return Err(self.lexer.err(pos, Problem::TooDeep));
                }
                let close = if open == '[' { ']' } else { ')' };
                let mut items = Vec::new();
                loop {
                    if let (_, Tok::Punct(c)) = self.peek()? {
                        if *c == close {
                            self.next()?;
                            break;
                        }
                    }
                    if matches!(self.peek()?, (_, Tok::Eof)) {
                        return Err(self.lexer.err(pos, Problem::UnclosedBracket(open)));
                    }
                    items.push(self.value(nesting + 1)?);
                    match self.next()? {
                        (_, Tok::Punct(',')) => {}
                        (_, Tok::Punct(c)) if c == close => break,
                        (_, Tok::Eof) => {
                            return Err(self.lexer.err(pos, Problem::UnclosedBracket(open)))
                        }
                        (p, other) => {
                            return Err(self.unexpected(p, &other, "`,` or a closing bracket"))
                        }
                    }
                }
                Value::List(items)
            }
            other => return Err(self.unexpected(pos, &other, "a value")),
        };
        Ok(Item { pos, value })
    }
}

/// Parses xm syntax into assignments, in file order. `file` names the input in errors.
pub fn parse_assignments(file: &str, text: &str) -> Result<Vec<Assignment>, ParseError> {
    let lexer = Lexer {
        chars: text.chars().peekable(),
        pos: Pos { line: 1, col: 1 },
        depth: 0,
        file,
    };
    Parser {
        lexer,
        peeked: None,
    }
    .file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Assignment>, ParseError> {
        parse_assignments("t.cfg", text)
    }

    #[test]
    fn multi_line_lists_comments_and_string_joins_parse() {
        let got = parse(
            "# guest\nname = \"a\" 'b'  # trailing\nvcpus=0x2; memory = -5\n\
             disk = [ \"x\",\n   'y', # between\n ]\nt = (1, [2])\nb = True\\\n\n",
        )
        .unwrap();
        let keys: Vec<&str> = got.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["name", "vcpus", "memory", "disk", "t", "b"]);
        assert_eq!(got[0].value.value, Value::Str("ab".into()));
        assert_eq!(got[1].value.value, Value::Int(2));
        assert_eq!(got[2].value.value, Value::Int(-5));
        assert_eq!(got[3].pos, Pos { line: 4, col: 1 });
        let Value::List(items) = &got[3].value.value else {
            panic!("not a list")
        };
        assert_eq!(items[1].pos, Pos { line: 5, col: 4 });
        assert_eq!(got[5].value.value, Value::Ident("True".into()));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("name = \"a\"\nmemory = 1.5\n").unwrap_err();
        assert_eq!(e.to_string(), "t.cfg:2:10: `1.5` is not an integer");
        let e = parse("disk = [ \"a\",\n \"b\"\n").unwrap_err();
        assert_eq!(e.to_string(), "t.cfg:1:8: `[` is never closed");
        let e = parse("name = 'abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.cfg:1:8: string is not terminated on its line"
        );
        let e = parse("memory 512\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.cfg:1:8: expected `=` after the key, found integer 512"
        );
        let e = parse("x = 1 + 2\n").unwrap_err();
        assert_eq!(e.to_string(), "t.cfg:1:7: unexpected character `+`");
        let e = parse("x = 99999999999999999999\n").unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = format!("x = {}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&text).is_err());
    }
}
