//! SCIM filter syntax: the AST, a hand-written tokenizer and a recursive-descent parser for
//! RFC 7644 §3.4.2.2 filters and for RFC 7644 §3.5.2 PATCH `path` values.
//!
//! This module is purely syntactic: it knows nothing about schemas. Attribute names are kept
//! as written; [`crate::scim::filter_eval`] (in-memory evaluation) and [`crate::store::scim_filter`]
//! (SQLite translation) resolve them through [`crate::scim::attr::AttributeResolver`].
//!
//! Grammar (precedence `not` > `and` > `or`, all keywords and operators case-insensitive):
//!
//! ```text
//! filter    = or
//! or        = and *( "or" and )
//! and       = unary *( "and" unary )
//! unary     = "not" "(" filter ")" / "(" filter ")" / valuePath / attrExp
//! valuePath = attrPath "[" valFilter "]"        ; valFilter: same grammar, no nested "["
//! attrExp   = attrPath "pr" / attrPath compareOp compValue
//! compValue = false / null / true / number / string   ; JSON literals
//! attrPath  = [URI ":"] ATTRNAME ["." subAttr]
//! ```
//!
//! Inside a value filter (`emails[type eq "work"]`) attribute paths name sub-attributes of
//! the outer attribute, so they may carry neither a URN nor a `.sub` part. In a filter,
//! `emails[type eq "work"].value eq "x"` (the user query Microsoft documents for Entra ID)
//! is read as `emails[type eq "work" and value eq "x"]`: one value matching both, which is
//! how evaluation and SQL translation then treat it. As a PATCH path
//! ([`parse_patch_path`]) the same `].value` form names the sub-attribute to change.
//!
//! Evaluation lives in `filter_eval.rs` and is re-exported here, so callers can use
//! `filter::{parse_filter, matches}`. The SQL translation is the store's
//! ([`crate::store::scim_filter::to_sql`]): the store depends on this AST, never the reverse,
//! so nothing of the store is re-exported here.
//!
//! Positions in error messages are 0-based character offsets into the input. Filters are
//! limited to [`MAX_DEPTH`] levels of parentheses and [`MAX_TERMS`] attribute expressions.

use std::fmt;

pub use crate::scim::filter_eval::{matches, matches_value_filter, validate_filter};

use serde_json::Number;
use thiserror::Error;

/// Maximum nesting of parentheses (`(...)`, `not (...)`) in a filter. Together with
/// [`MAX_TERMS`] this bounds the recursion depth of parsing, evaluation, SQL translation and
/// dropping a [`Filter`], so hostile input cannot overflow the stack.
pub const MAX_DEPTH: usize = 32;

/// Maximum number of attribute expressions (`attr op value`, `attr pr`, value-path parts)
/// in one filter.
pub const MAX_TERMS: usize = 64;

/// A parsed SCIM filter (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `left and right`.
    And(Box<Filter>, Box<Filter>),
    /// `left or right`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (inner)`.
    Not(Box<Filter>),
    /// `path op value`, e.g. `userName eq "bjensen"`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The comparison operator.
        op: CompareOp,
        /// The literal compared against.
        value: CompValue,
    },
    /// `path pr`: the attribute has a non-empty value.
    Present {
        /// The attribute tested.
        path: AttrPath,
    },
    /// `path[filter]`: some element (value) of the complex attribute `path` matches
    /// `filter`. Paths inside `filter` name sub-attributes of `path` (their `attr` field is
    /// the sub-attribute name; `urn` and `sub` are always `None`).
    ValuePath {
        /// The complex (usually multi-valued) attribute.
        path: AttrPath,
        /// The filter applied to each of its values.
        filter: Box<Filter>,
    },
}

/// RFC 7644 comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains (strings only).
    Co,
    /// `sw`: starts with (strings only).
    Sw,
    /// `ew`: ends with (strings only).
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Parses an operator keyword, case-insensitively (`pr` is not a `CompareOp`).
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        const OPS: [(&str, CompareOp); 9] = [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ];
        OPS.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(word))
            .map(|(_, op)| *op)
    }

    /// The lower-case keyword (`eq`, `co`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// True for `co`, `sw` and `ew`, which only apply to strings.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

/// A comparison literal (`compValue`): a JSON scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// A JSON string, escapes already decoded.
    String(String),
    /// A JSON number, kept exactly as `serde_json` parsed it.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// An attribute path as written: `[urn ":"] attr ["." sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix when the path is fully qualified
    /// (`urn:ietf:params:scim:schemas:core:2.0:User` in
    /// `urn:ietf:params:scim:schemas:core:2.0:User:userName`).
    pub urn: Option<String>,
    /// The attribute name (or, inside a value filter, the sub-attribute name).
    pub attr: String,
    /// The sub-attribute name (`familyName` in `name.familyName`).
    pub sub: Option<String>,
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2): `attrPath` or
/// `valuePath [ "." subAttr ]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute path before any `[...]`. When `filter` is set, `attr.sub` is `None`.
    pub attr: AttrPath,
    /// The value-selection filter (`members[value eq "2819c223"]`), if any.
    pub filter: Option<Filter>,
    /// The sub-attribute after the filter (`value` in `emails[type eq "work"].value`).
    pub sub_attr: Option<String>,
}

/// A filter or PATCH path that could not be parsed or evaluated. Maps to SCIM
/// `scimType` `invalidFilter` (or `invalidPath` for PATCH paths).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    /// The text is not valid filter syntax.
    #[error("{message} at position {position}")]
    Syntax {
        /// What was wrong, e.g. `expected a comparison operator after "userName"`.
        message: String,
        /// 0-based character offset of the offending token.
        position: usize,
    },
    /// Syntactically valid, but not meaningful for the schema: unknown attribute, `gt` on a
    /// Boolean, a number compared with a string attribute, ...
    #[error("{0}")]
    Invalid(String),
}

impl FilterError {
    /// The RFC 7644 `scimType` for this error in a query (`invalidFilter`).
    pub fn scim_type(&self) -> &'static str {
        "invalidFilter"
    }

    fn syntax(message: impl Into<String>, position: usize) -> FilterError {
        FilterError::Syntax {
            message: message.into(),
            position,
        }
    }
}

/// Whether `f` is an equality on an attribute the store keeps in an indexed column (`id`,
/// `externalId`, `userName`, `displayName`): what IdPs send before each create ("is this
/// user there?"), answered from one index entry, never a scan. Its attribute, its column,
/// and the string it is compared with.
pub fn indexed_equality<'f>(
    f: &'f Filter,
    resolver: &dyn super::attr::AttributeResolver,
) -> Option<(super::attr::ResolvedPath, &'static str, &'f str)> {
    let Filter::Compare {
        path,
        op: CompareOp::Eq,
        value: CompValue::String(s),
    } = f
    else {
        return None;
    };
    let rp = crate::scim::filter_eval::resolve_root(path, resolver).ok()?;
    let column = resolver
        .column(&rp)
        .filter(|c| matches!(*c, "id" | "external_id" | "user_name" | "display_name"))?;
    Some((rp, column, s))
}

/// Parses a SCIM filter (the `filter` query parameter or `/.search` body member).
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser::new(tokens);
    if parser.peek().tok == Tok::End {
        return Err(FilterError::syntax("empty filter", parser.peek().pos));
    }
    let filter = parser.parse_or()?;
    let next = parser.peek();
    match &next.tok {
        Tok::End => Ok(filter),
        Tok::RParen => Err(FilterError::syntax(
            "unbalanced ')': no matching '('",
            next.pos,
        )),
        _ => Err(FilterError::syntax(
            format!(
                "expected \"and\", \"or\" or the end of the filter, found {}",
                next.tok.describe()
            ),
            next.pos,
        )),
    }
}

/// Parses a PATCH operation `path` (RFC 7644 §3.5.2), e.g. `name.givenName`,
/// `members[value eq "2819c223"]`, `emails[type eq "work"].value`, or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let tokens = tokenize(input)?;
    let mut parser = Parser::new(tokens);
    let first = parser.next();
    let (word, pos) = match first.tok {
        Tok::Word(w) => (w, first.pos),
        Tok::End => return Err(FilterError::syntax("empty path", first.pos)),
        other => {
            return Err(FilterError::syntax(
                format!("expected an attribute path, found {}", other.describe()),
                first.pos,
            ));
        }
    };
    let attr = parse_attr_path(&word, pos)?;
    let mut filter = None;
    let mut sub_attr = None;
    if parser.peek().tok == Tok::LBracket {
        let open = parser.next().pos;
        if attr.sub.is_some() {
            return Err(FilterError::syntax(
                format!("a value filter must follow a top-level attribute, not \"{attr}\""),
                open,
            ));
        }
        filter = Some(parser.parse_bracketed(open)?);
        let next = parser.peek().clone();
        if let Tok::Word(w) = &next.tok
            && let Some(name) = w.strip_prefix('.')
        {
            check_attr_name(name, next.pos + 1)?;
            sub_attr = Some(name.to_string());
            parser.next();
        }
    }
    let next = parser.peek();
    if next.tok != Tok::End {
        return Err(FilterError::syntax(
            format!("unexpected {} in path", next.tok.describe()),
            next.pos,
        ));
    }
    Ok(PatchPath {
        attr,
        filter,
        sub_attr,
    })
}

// ---------------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// An attribute path, keyword or operator: `[A-Za-z0-9$_.:-]+` starting with a letter,
    /// `$`, `_` or `.` (the last only for `].sub` in PATCH paths).
    Word(String),
    Str(String),
    Num(Number),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Word(w) => format!("\"{w}\""),
            Tok::Str(s) => format!("string {}", serde_json::Value::String(s.clone())),
            Tok::Num(n) => format!("number {n}"),
            Tok::End => "the end of the input".into(),
        }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '$' | '_' | '-' | ':' | '.')
}

/// [`is_word_char`] of a byte: word characters are ASCII, so a byte of a multi-byte
/// character is never one.
fn is_word_byte(b: u8) -> bool {
    is_word_char(char::from(b))
}

/// The filter's tokens. It walks the text by byte offset and slices words, strings and
/// numbers out of it (no copy of the input, one allocation per word or string); a token's
/// `pos`, which error messages show, counts characters.
fn tokenize(input: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::with_capacity(8);
    // The byte offset of the next character, and its position in characters.
    let (mut at, mut pos) = (0, 0);
    while let Some(c) = input[at..].chars().next() {
        let start = pos;
        let rest = &input[at..];
        let tok = match c {
            c if c.is_whitespace() => {
                at += c.len_utf8();
                pos += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '"' => {
                let (s, bytes, chars) = lex_string(rest, start)?;
                at += bytes;
                pos += chars;
                tokens.push(Token {
                    tok: Tok::Str(s),
                    pos: start,
                });
                continue;
            }
            '-' | '0'..='9' => {
                // A number is ASCII: its bytes are its characters.
                let (n, len) = lex_number(rest, start)?;
                at += len;
                pos += len;
                tokens.push(Token {
                    tok: Tok::Num(n),
                    pos: start,
                });
                continue;
            }
            c if c.is_ascii_alphabetic() || matches!(c, '$' | '_' | '.') => {
                let len = rest.bytes().take_while(|b| is_word_byte(*b)).count();
                tokens.push(Token {
                    tok: Tok::Word(rest[..len].to_string()),
                    pos: start,
                });
                at += len;
                pos += len;
                continue;
            }
            other => {
                return Err(FilterError::syntax(
                    format!("unexpected character '{other}'"),
                    start,
                ));
            }
        };
        tokens.push(Token { tok, pos: start });
        // The four brackets are one byte each.
        at += 1;
        pos += 1;
    }
    tokens.push(Token { tok: Tok::End, pos });
    Ok(tokens)
}

/// Lexes the JSON string at the start of `text` (`text` begins with `"`), which begins at
/// character position `start`; returns the decoded string and the literal's length in
/// bytes and in characters.
fn lex_string(text: &str, start: usize) -> Result<(String, usize, usize), FilterError> {
    let bytes = text.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            // The escaped byte is skipped: a `"` there does not end the string, and a byte
            // of a multi-byte character is never `"` or `\`.
            b'\\' => i += 2,
            b'"' => {
                let raw = &text[..=i];
                let inner = &bytes[1..i];
                // No escape and no control character: the literal's text is its value
                // (what serde_json would decode it to), copied as it is.
                if inner.iter().all(|b| *b >= 0x20 && *b != b'\\') {
                    return Ok((text[1..i].to_string(), i + 1, raw.chars().count()));
                }
                return match serde_json::from_str::<String>(raw) {
                    // No stored value holds U+0000 (the writes refuse it): SQLite would
                    // answer such a comparison and PostgreSQL cannot bind it, so both refuse.
                    Ok(s) if s.contains('\0') => Err(FilterError::syntax(
                        "a string holds the character U+0000, which no value can hold",
                        start,
                    )),
                    Ok(s) => Ok((s, i + 1, raw.chars().count())),
                    Err(e) => Err(FilterError::syntax(
                        format!("invalid string literal ({e})"),
                        start,
                    )),
                };
            }
            _ => i += 1,
        }
    }
    Err(FilterError::syntax("unterminated string literal", start))
}

/// Lexes the JSON number (`-? int [frac] [exp]`) at the start of `text`, which begins at
/// character position `start`; returns it and its length (ASCII: bytes are characters).
fn lex_number(text: &str, start: usize) -> Result<(Number, usize), FilterError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > from
    };
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    let mut ok = digits(&mut i);
    if ok && bytes.get(i) == Some(&b'.') {
        i += 1;
        ok = digits(&mut i);
    }
    if ok && matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        ok = digits(&mut i);
    }
    if ok
        && bytes.get(i).is_none_or(|b| !is_word_byte(*b))
        && let Ok(n) = serde_json::from_str::<Number>(&text[..i])
    {
        return Ok((n, i));
    }
    let mut end = i;
    while end < bytes.len() && is_word_byte(bytes[end]) {
        end += 1;
    }
    Err(FilterError::syntax(
        format!("invalid number \"{}\"", &text[..end]),
        start,
    ))
}

// ---------------------------------------------------------------------------------------
// Attribute paths

/// `ATTRNAME = ALPHA *(nameChar)` with `nameChar = "-" / "_" / DIGIT / ALPHA`, plus `$ref`.
fn check_attr_name(name: &str, pos: usize) -> Result<(), FilterError> {
    let mut chars = name.chars();
    let valid = name.eq_ignore_ascii_case("$ref")
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else if name.is_empty() {
        Err(FilterError::syntax("missing attribute name", pos))
    } else {
        Err(FilterError::syntax(
            format!("invalid attribute name \"{name}\""),
            pos,
        ))
    }
}

/// Splits a word into `[urn ":"] attr ["." sub]`. The URN is everything up to the last
/// `':'` (URNs contain dots, as in `...:2.0:User`, but attribute names never contain `':'`).
fn parse_attr_path(word: &str, pos: usize) -> Result<AttrPath, FilterError> {
    let (urn, rest, rest_pos) = match word.rfind(':') {
        Some(idx) => {
            let urn = &word[..idx];
            if !urn.to_ascii_lowercase().starts_with("urn:") {
                return Err(FilterError::syntax(
                    format!("invalid attribute path \"{word}\": a schema prefix must be a URN"),
                    pos,
                ));
            }
            (Some(urn.to_string()), &word[idx + 1..], pos + idx + 1)
        }
        None => (None, word, pos),
    };
    let mut parts = rest.splitn(3, '.');
    let attr = parts.next().unwrap_or_default();
    check_attr_name(attr, rest_pos)?;
    let sub = parts.next();
    if let Some(sub) = sub {
        check_attr_name(sub, rest_pos + attr.len() + 1)?;
    }
    if parts.next().is_some() {
        return Err(FilterError::syntax(
            format!("invalid attribute path \"{word}\": at most one sub-attribute level"),
            pos,
        ));
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_string(),
        sub: sub.map(str::to_string),
    })
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser {
    tokens: Vec<Token>,
    index: usize,
    /// Inside `[...]`: paths are sub-attribute names and brackets cannot nest.
    in_brackets: bool,
    /// Current `(`/`not (` nesting.
    depth: usize,
    /// Attribute expressions seen so far.
    terms: usize,
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Parser {
        Parser {
            tokens,
            index: 0,
            in_brackets: false,
            depth: 0,
            terms: 0,
        }
    }

    fn peek(&self) -> &Token {
        static END: Token = Token {
            tok: Tok::End,
            pos: 0,
        };
        self.tokens
            .get(self.index)
            .or_else(|| self.tokens.last())
            .unwrap_or(&END)
    }

    /// The next token, moved out (each is taken once; what it leaves is the `End` it is
    /// never read as, since the index moves past it). At the end, `End` again.
    fn next(&mut self) -> Token {
        match self.tokens.get_mut(self.index) {
            Some(token) if token.tok != Tok::End => {
                self.index += 1;
                let pos = token.pos;
                std::mem::replace(token, Token { tok: Tok::End, pos })
            }
            _ => self.peek().clone(),
        }
    }

    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        while self.peek().tok.is_keyword("or") {
            self.next();
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        while self.peek().tok.is_keyword("and") {
            self.next();
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn expect_close(&mut self, close: Tok, open_pos: usize) -> Result<(), FilterError> {
        let token = self.next();
        if token.tok == close {
            return Ok(());
        }
        let (what, opener) = if close == Tok::RParen {
            ("')'", "'('")
        } else {
            ("']'", "'['")
        };
        Err(FilterError::syntax(
            format!(
                "expected {what} to close the {opener} at position {open_pos}, found {}",
                token.tok.describe()
            ),
            token.pos,
        ))
    }

    /// Parses a parenthesised filter after its '(' at `open`, enforcing [`MAX_DEPTH`].
    fn parse_group(&mut self, open: usize) -> Result<Filter, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::syntax(
                format!("filter nested too deeply (more than {MAX_DEPTH} levels)"),
                open,
            ));
        }
        let inner = self.parse_or()?;
        self.expect_close(Tok::RParen, open)?;
        self.depth -= 1;
        Ok(inner)
    }

    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        let token = self.next();
        match token.tok {
            Tok::LParen => self.parse_group(token.pos),
            Tok::Word(ref w) if w.eq_ignore_ascii_case("not") => {
                let open = self.next();
                if open.tok != Tok::LParen {
                    return Err(FilterError::syntax(
                        format!("expected '(' after \"not\", found {}", open.tok.describe()),
                        open.pos,
                    ));
                }
                Ok(Filter::Not(Box::new(self.parse_group(open.pos)?)))
            }
            Tok::Word(ref w) if w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or") => {
                Err(FilterError::syntax(
                    format!("expected an attribute path, found {}", token.tok.describe()),
                    token.pos,
                ))
            }
            Tok::Word(w) => self.parse_path_expression(&w, token.pos),
            Tok::End => Err(FilterError::syntax(
                "expected an attribute path, found the end of the input",
                token.pos,
            )),
            other => Err(FilterError::syntax(
                format!("expected an attribute path, found {}", other.describe()),
                token.pos,
            )),
        }
    }

    /// Parses `[ "..." ]` after the '[' at `open` has been consumed.
    fn parse_bracketed(&mut self, open: usize) -> Result<Filter, FilterError> {
        self.in_brackets = true;
        let inner = self.parse_or()?;
        self.expect_close(Tok::RBracket, open)?;
        self.in_brackets = false;
        Ok(inner)
    }

    fn parse_path_expression(&mut self, word: &str, pos: usize) -> Result<Filter, FilterError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(FilterError::syntax(
                format!("filter too long (more than {MAX_TERMS} attribute expressions)"),
                pos,
            ));
        }
        let path = parse_attr_path(word, pos)?;
        if self.peek().tok == Tok::LBracket {
            let open = self.next().pos;
            if self.in_brackets {
                return Err(FilterError::syntax("value filters cannot be nested", open));
            }
            if path.sub.is_some() {
                return Err(FilterError::syntax(
                    format!("a value filter must follow a top-level attribute, not \"{path}\""),
                    open,
                ));
            }
            let filter = self.parse_bracketed(open)?;
            let next = self.peek().clone();
            if let Tok::Word(w) = &next.tok
                && let Some(name) = w.strip_prefix('.')
            {
                // `emails[type eq "work"].value eq "x"` (Entra ID's documented user query):
                // some value matches the bracket *and* the comparison on its sub-attribute,
                // i.e. `emails[type eq "work" and value eq "x"]`, which is what it becomes.
                let at = next.pos;
                self.next();
                self.terms += 1;
                let sub_path = parse_attr_path(name, at + 1)?;
                if sub_path.urn.is_some() || sub_path.sub.is_some() {
                    return Err(FilterError::syntax(
                        format!("\"{path}[...]{w}\": name one sub-attribute after the brackets"),
                        at,
                    ));
                }
                let label = format!("{path}[...]{w}");
                let compared = self.parse_operator_and_value(sub_path, &label)?;
                return Ok(Filter::ValuePath {
                    path,
                    filter: Box::new(Filter::And(Box::new(filter), Box::new(compared))),
                });
            }
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        if self.in_brackets && (path.urn.is_some() || path.sub.is_some()) {
            return Err(FilterError::syntax(
                format!(
                    "inside a value filter, \"{path}\" must be a plain sub-attribute name \
                     (like \"type\" in emails[type eq \"work\"])"
                ),
                pos,
            ));
        }
        self.parse_operator_and_value(path, word)
    }

    /// `op value` or `pr` after the attribute path `path` (written `word`).
    fn parse_operator_and_value(
        &mut self,
        path: AttrPath,
        word: &str,
    ) -> Result<Filter, FilterError> {
        let op_token = self.next();
        let op_word = match op_token.tok {
            Tok::Word(w) => w,
            other => {
                let found = if other == Tok::End {
                    String::new()
                } else {
                    format!(", found {}", other.describe())
                };
                return Err(FilterError::syntax(
                    format!("expected a comparison operator after \"{word}\"{found}"),
                    op_token.pos,
                ));
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            let next = self.peek();
            let has_value = matches!(next.tok, Tok::Str(_) | Tok::Num(_))
                || ["true", "false", "null"]
                    .iter()
                    .any(|k| next.tok.is_keyword(k));
            if has_value {
                return Err(FilterError::syntax(
                    "the \"pr\" operator takes no value",
                    next.pos,
                ));
            }
            return Ok(Filter::Present { path });
        }
        let Some(op) = CompareOp::from_keyword(&op_word) else {
            return Err(FilterError::syntax(
                format!(
                    "unknown operator \"{op_word}\" (expected eq, ne, co, sw, ew, gt, ge, lt, le \
                     or pr)"
                ),
                op_token.pos,
            ));
        };
        let value_token = self.next();
        let value = match value_token.tok {
            Tok::Str(s) => CompValue::String(s),
            Tok::Num(n) => CompValue::Number(n),
            Tok::Word(ref w) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Tok::Word(ref w) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Tok::Word(ref w) if w.eq_ignore_ascii_case("null") => CompValue::Null,
            other => {
                return Err(FilterError::syntax(
                    format!(
                        "expected a value (string, number, true, false or null) after \"{}\", \
                         found {}",
                        op.keyword(),
                        other.describe()
                    ),
                    value_token.pos,
                ));
            }
        };
        // A value directly followed by another value or path is almost always a missing
        // quote or operator; report it here with the better message.
        let next = self.peek();
        if matches!(next.tok, Tok::Str(_) | Tok::Num(_)) {
            return Err(FilterError::syntax(
                format!(
                    "unexpected {} after the value of \"{word}\"",
                    next.tok.describe()
                ),
                next.pos,
            ));
        }
        Ok(Filter::Compare { path, op, value })
    }
}

// ---------------------------------------------------------------------------------------
// Display: canonical filter text that parses back to the same AST.

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(l, r) => {
                // `and` binds tighter than `or`; both are left-associative.
                write_operand(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                write_operand(f, l, false)?;
                f.write_str(" or ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present { path } => write!(f, "{path} pr"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}
