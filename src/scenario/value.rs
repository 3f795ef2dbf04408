//! A spanned value tree shared by the TOML and JSON readers: every value and
//! every key remembers the byte offset where it starts, so that validation
//! errors can name the file, line and column.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Maximum nesting of arrays/tables accepted (guards the recursive readers).
pub const MAX_DEPTH: usize = 128;

#[derive(Clone, Debug)]
pub enum Val {
    Str(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    Arr(Vec<Node>),
    Table(Vec<Entry>),
    /// A TOML datetime (never valid in a scenario) or JSON `null`.
    Other(&'static str),
}

#[derive(Clone, Debug)]
pub struct Node {
    pub val: Val,
    /// Byte offset of the value in the source.
    pub at: usize,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    /// Byte offset of the key in the source.
    pub key_at: usize,
    pub node: Node,
}

impl Val {
    /// Name of the value's type, for "expected X, got Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Arr(_) => "an array",
            Val::Table(_) => "a table",
            Val::Other(what) => what,
        }
    }
}

/// A syntax error: byte offset and message.
#[derive(Debug)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

/// Rough pre-check of bracket nesting so that a pathological TOML document
/// cannot overflow the stack of the (recursive) TOML parser.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut comment = false;
    let mut prev = '\0';
    for (i, c) in text.char_indices() {
        if c == '\n' {
            comment = false;
            in_str = None;
        } else if comment {
        } else if let Some(q) = in_str {
            if c == q && !(q == '"' && prev == '\\') {
                in_str = None;
            }
        } else {
            match c {
                '#' => comment = true,
                '"' | '\'' => in_str = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Some(i);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
    }
    None
}

pub fn parse_toml(text: &str) -> Result<Node, SyntaxError> {
    if let Some(at) = too_deep(text) {
        return Err(SyntaxError {
            at,
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        });
    }
    match DeTable::parse(text) {
        Ok(t) => Ok(Node {
            at: t.span().start,
            val: Val::Table(toml_table(t.get_ref())),
        }),
        Err(e) => {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .trim()
                .to_string();
            Err(SyntaxError { at, message })
        }
    }
}

fn toml_table(t: &DeTable<'_>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = t
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_at: k.span().start,
            node: toml_node(v),
        })
        .collect();
    // Document order, so that the first error reported is the first in the file.
    entries.sort_by_key(|e| e.key_at);
    entries
}

fn toml_node(v: &Spanned<DeValue<'_>>) -> Node {
    let at = v.span().start;
    let val = match v.get_ref() {
        DeValue::String(s) => Val::Str(s.to_string()),
        DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Val::Int(n),
            Err(_) => Val::Other("an integer out of range"),
        },
        DeValue::Float(f) => Val::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Val::Bool(*b),
        DeValue::Datetime(_) => Val::Other("a datetime"),
        DeValue::Array(a) => Val::Arr(a.iter().map(toml_node).collect()),
        DeValue::Table(t) => Val::Table(toml_table(t)),
    };
    Node { val, at }
}

/// A small JSON reader that keeps positions.
pub fn parse_json(text: &str) -> Result<Node, SyntaxError> {
    let mut p = Json {
        s: text.as_bytes(),
        text,
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected characters after the JSON value"));
    }
    Ok(v)
}

struct Json<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

impl Json<'_> {
    fn err(&self, m: &str) -> SyntaxError {
        SyntaxError {
            at: self.i,
            message: m.to_string(),
        }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), SyntaxError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {what}")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        self.ws();
        if depth > MAX_DEPTH {
            return Err(self.err(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let at = self.i;
        let val = match self.peek() {
            None => return Err(self.err("unexpected end of input, expected a value")),
            Some(b'{') => {
                self.i += 1;
                let mut entries: Vec<Entry> = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_at = self.i;
                        if self.peek() != Some(b'"') {
                            return Err(self.err("expected a string key"));
                        }
                        let key = self.string()?;
                        if entries.iter().any(|e| e.key == key) {
                            return Err(SyntaxError {
                                at: key_at,
                                message: format!("duplicate key {key:?}"),
                            });
                        }
                        self.expect(b':', "':' after the key")?;
                        let node = self.value(depth + 1)?;
                        entries.push(Entry { key, key_at, node });
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or '}'")),
                        }
                    }
                }
                Val::Table(entries)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected ',' or ']'")),
                        }
                    }
                }
                Val::Arr(items)
            }
            Some(b'"') => Val::Str(self.string()?),
            Some(b't') => self.word("true", Val::Bool(true))?,
            Some(b'f') => self.word("false", Val::Bool(false))?,
            Some(b'n') => self.word("null", Val::Other("null"))?,
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number()?,
            Some(_) => return Err(self.err("expected a value")),
        };
        Ok(Node { val, at })
    }

    fn word(&mut self, w: &str, v: Val) -> Result<Val, SyntaxError> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn number(&mut self) -> Result<Val, SyntaxError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 {
            return Err(self.err("expected digits"));
        }
        if n > 1 && self.s[int_start] == b'0' {
            return Err(SyntaxError {
                at: int_start,
                message: "leading zeros are not allowed in JSON numbers".into(),
            });
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            float = true;
            if digits(self) == 0 {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("expected digits in the exponent"));
            }
        }
        let t = &self.text[start..self.i];
        Ok(if float {
            Val::Float(t.parse().unwrap_or(f64::NAN))
        } else {
            match t.parse::<i128>() {
                Ok(n) => Val::Int(n),
                Err(_) => Val::Other("an integer out of range"),
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let h = self
            .text
            .get(self.i..self.i + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .filter(|_| self.s[self.i..self.i + 4].iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.err("expected 4 hex digits after \\u"))?;
        self.i += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let run_start = self.i;
            while self
                .peek()
                .is_some_and(|c| c != b'"' && c != b'\\' && c >= 0x20)
            {
                self.i += 1;
            }
            out.push_str(&self.text[run_start..self.i]);
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.i..].starts_with(b"\\u") {
                                    return Err(self.err("expected a low surrogate \\uXXXX"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("invalid low surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            out.push(
                                char::from_u32(cp).ok_or_else(|| self.err("invalid \\u escape"))?,
                            );
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
            }
        }
    }
}
