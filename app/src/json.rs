//! The JSON reader of server functions' results, resources' hydration data and live updates:
//! a small serde `Deserializer` over bytes, so the browser bundles carry neither serde_json's
//! parser nor the float formatting its error messages pull in (about 40 KB of WASM on every
//! page). The server writes JSON with serde_json; this reads what it writes.
//!
//! It accepts exactly JSON (RFC 8259), with serde_json's data model: objects as maps and
//! structs, `"Variant"` or `{"Variant": …}` for enums, `null` for `None` and `()`. It reads by
//! type and takes each type only as serde_json writes it (a struct from an object, not from an
//! array as serde_json also would), so no visitor is compiled for JSON it never meets. Numbers
//! with a fraction or an exponent are computed without correct rounding (within a few units in
//! the last place): Nest's models carry no floats, and exact ones would bring back the code
//! this module exists to leave out.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

/// How deep arrays and objects may nest (serde_json's limit too): deeper input is refused
/// rather than overflowing the stack.
const MAX_DEPTH: usize = 128;

/// Input that is not JSON, or not the JSON of the type asked for, and where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at byte {at}")]
pub struct Error {
    message: String,
    at: usize,
}

impl Error {
    fn new(message: String) -> Self {
        Error { message, at: 0 }
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }

    // serde's own wording, without formatting a float's value: that alone would bring
    // `f64: Display` (about 15 KB) into the bundle.
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Error::new(format!(
            "invalid type: {}, expected {expected}",
            Found(unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Error::new(format!(
            "invalid value: {}, expected {expected}",
            Found(unexpected)
        ))
    }
}

/// What the input held, in serde's words (floats without their value).
struct Found<'a>(Unexpected<'a>);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unexpected::Bool(b) => write!(f, "boolean `{b}`"),
            Unexpected::Unsigned(n) => write!(f, "integer `{n}`"),
            Unexpected::Signed(n) => write!(f, "integer `{n}`"),
            Unexpected::Float(_) => f.write_str("a number with a fraction or an exponent"),
            Unexpected::Char(c) => write!(f, "character `{c}`"),
            // Quoted as it is (not `{s:?}`: release bundles format nothing with `Debug`, and
            // `escape_debug` would bring Unicode's tables into them); `clip` escapes what
            // needs it before the message is shown.
            Unexpected::Str(s) => write!(f, "string \"{s}\""),
            Unexpected::Other(other) => f.write_str(other),
            _ => f.write_str(match self.0 {
                Unexpected::Bytes(_) => "byte array",
                Unexpected::Unit => "null",
                Unexpected::Option => "optional value",
                Unexpected::NewtypeStruct => "newtype struct",
                Unexpected::Seq => "array",
                Unexpected::Map => "object",
                Unexpected::Enum => "enum",
                Unexpected::UnitVariant => "unit variant",
                Unexpected::NewtypeVariant => "newtype variant",
                Unexpected::TupleVariant => "tuple variant",
                _ => "struct variant",
            }),
        }
    }
}

/// Reads a `T` from the whole of `bytes` (whitespace around it allowed, nothing else).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut reader).and_then(|value| match reader.skip_whitespace() {
        None => Ok(value),
        Some(_) => Err(reader.fail("trailing characters")),
    });
    // serde's own errors (a missing field, a wrong type) are located where reading stopped.
    value.map_err(|e| Error {
        at: if e.at == 0 { reader.pos } else { e.at },
        message: e.message,
    })
}

/// A number as read, before a visitor says what it wants.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

/// The input and where reading is.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &str) -> Error {
        Error {
            message: what.to_owned(),
            at: self.pos,
        }
    }

    /// The next byte that is not whitespace, not consumed.
    fn skip_whitespace(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// The next significant byte, not consumed; the end of the input is an error.
    fn peek(&mut self) -> Result<u8, Error> {
        self.skip_whitespace()
            .ok_or_else(|| self.fail("EOF while parsing a value"))
    }

    /// Consumes `expected` (after whitespace) or fails with `what`.
    fn expect(&mut self, expected: u8, what: &str) -> Result<(), Error> {
        if self.skip_whitespace() == Some(expected) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(what))
        }
    }

    /// Consumes the literal `word` (`null`, `true`, `false`).
    fn literal(&mut self, word: &[u8]) -> Result<(), Error> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.fail("expected value"))
        }
    }

    /// A string, from its opening quote.
    fn string(&mut self) -> Result<Cow<'a, str>, Error> {
        self.expect(b'"', "expected string")?;
        let bytes = self.bytes;
        let mut owned: Option<Vec<u8>> = None;
        let mut start = self.pos;
        loop {
            let Some(&b) = bytes.get(self.pos) else {
                return Err(self.fail("EOF while parsing a string"));
            };
            match b {
                b'"' => {
                    let text = match owned {
                        None => Cow::Borrowed(&bytes[start..self.pos]),
                        Some(mut buf) => {
                            buf.extend_from_slice(&bytes[start..self.pos]);
                            Cow::Owned(buf)
                        }
                    };
                    self.pos += 1;
                    return match text {
                        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed).ok(),
                        Cow::Owned(b) => String::from_utf8(b).map(Cow::Owned).ok(),
                    }
                    .ok_or_else(|| self.fail("invalid UTF-8 in string"));
                }
                b'\\' => {
                    let buf = owned.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(&bytes[start..self.pos]);
                    self.pos += 1;
                    self.escape(buf)?;
                    start = self.pos;
                }
                0..=0x1f => return Err(self.fail("control character in string")),
                _ => self.pos += 1,
            }
        }
    }

    /// One escape, after its backslash, appended to `buf` as UTF-8.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.fail("EOF while parsing a string"));
        };
        self.pos += 1;
        let plain = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xd800..=0xdbff => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(self.fail("lone leading surrogate in hex escape"));
                        }
                        self.pos += 2;
                        let second = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&second) {
                            return Err(self.fail("lone leading surrogate in hex escape"));
                        }
                        0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                    }
                    0xdc00..=0xdfff => {
                        return Err(self.fail("lone trailing surrogate in hex escape"));
                    }
                    _ => first,
                };
                let c = char::from_u32(code).ok_or_else(|| self.fail("invalid unicode escape"))?;
                buf.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => return Err(self.fail("invalid escape")),
        };
        buf.push(plain);
        Ok(())
    }

    /// The four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.pos)
                .and_then(|&b| char::from(b).to_digit(16))
                .ok_or_else(|| self.fail("invalid hex escape"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// Skips the digits from here; how many there were (at least one, or an error).
    fn digits(&mut self) -> Result<usize, Error> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        match self.pos - start {
            0 => Err(self.fail("invalid number")),
            n => Ok(n),
        }
    }

    /// A number, from its first character: an integer when it has neither a fraction nor an
    /// exponent and fits 64 bits, else a float.
    fn number(&mut self) -> Result<Number, Error> {
        let start = self.pos;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let whole_start = self.pos;
        let whole = self.digits()?;
        if whole > 1 && self.bytes[whole_start] == b'0' {
            return Err(self.fail("invalid number"));
        }
        let mut integer = true;
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            self.digits()?;
            integer = false;
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'-' | b'+')) {
                self.pos += 1;
            }
            self.digits()?;
            integer = false;
        }
        let text = &self.bytes[start..self.pos];
        if integer {
            let magnitude = text[usize::from(negative)..].iter().try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            match (magnitude, negative) {
                (Some(n), false) => return Ok(Number::Unsigned(n)),
                // -2^63 too: as i64 it is i64::MIN, which negates to itself.
                (Some(n), true) if n <= 1 << 63 => {
                    return Ok(Number::Signed((n as i64).wrapping_neg()));
                }
                _ => {}
            }
        }
        let value = float(text);
        if value.is_infinite() {
            return Err(self.fail("number out of range"));
        }
        Ok(Number::Float(value))
    }

    /// Enters an array or an object: one level deeper, within [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail("recursion limit exceeded"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Before an element (`first`) or a `,` and the next one: whether there is one, up to and
    /// including the closing `close`.
    fn has_next(&mut self, first: &mut bool, close: u8) -> Result<bool, Error> {
        let b = self.peek()?;
        if b == close {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        if *first {
            *first = false;
        } else if b == b',' {
            self.pos += 1;
            if self.peek()? == close {
                return Err(self.fail("trailing comma"));
            }
        } else {
            return Err(self.fail(if close == b']' {
                "expected `,` or `]`"
            } else {
                "expected `,` or `}`"
            }));
        }
        Ok(true)
    }
}

/// The value of a JSON number with a fraction or an exponent (already checked): its first 19
/// significant digits, scaled by a power of ten. Not correctly rounded: see the module's note.
fn float(text: &[u8]) -> f64 {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (digits, written) = match text.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(e) => (&text[..e], &text[e + 1..]),
        None => (text, &b"0"[..]),
    };
    let mut exponent: i32 = written.iter().fold(0i32, |n, b| match b {
        b'0'..=b'9' => n.saturating_mul(10).saturating_add(i32::from(b - b'0')),
        _ => n,
    });
    if written.first() == Some(&b'-') {
        exponent = -exponent;
    }
    let mut mantissa: u64 = 0;
    let mut significant = 0;
    let mut fraction = false;
    for &b in digits {
        if b == b'.' {
            fraction = true;
            continue;
        }
        if significant < 19 {
            mantissa = mantissa * 10 + u64::from(b - b'0');
            if mantissa > 0 {
                significant += 1;
            }
            if fraction {
                exponent = exponent.saturating_sub(1);
            }
        } else if !fraction {
            exponent = exponent.saturating_add(1);
        }
    }
    let magnitude = if mantissa == 0 {
        0.0
    } else {
        let scale = 10f64.powi(exponent.unsigned_abs().min(400) as i32);
        if exponent < 0 {
            mantissa as f64 / scale
        } else {
            mantissa as f64 * scale
        }
    };
    if negative { -magnitude } else { magnitude }
}

/// What a type-directed read met instead of what it wanted (from the first byte only: the
/// value is not read, so a float is never formatted).
fn found(first: u8) -> Unexpected<'static> {
    match first {
        b'n' => Unexpected::Unit,
        b't' => Unexpected::Bool(true),
        b'f' => Unexpected::Bool(false),
        b'"' => Unexpected::Other("a string"),
        b'[' => Unexpected::Seq,
        b'{' => Unexpected::Map,
        _ => Unexpected::Other("a number"),
    }
}

impl Reader<'_> {
    /// An array or an object, from its `[` or `{` up to its `close`, through `read` (the
    /// visitor's `visit_seq` or `visit_map`).
    fn items<T>(
        &mut self,
        close: u8,
        read: impl FnOnce(&mut Items<'_, '_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.enter()?;
        let mut items = Items {
            reader: self,
            first: true,
            close,
            done: false,
        };
        let value = read(&mut items)?;
        // A visitor may stop early (a tuple): what it left is an error, not the parent's next
        // item.
        if !items.done && items.next()? {
            return Err(items.reader.fail(if close == b']' {
                "trailing elements in array"
            } else {
                "trailing entries in object"
            }));
        }
        Ok(value)
    }

    /// The next value must begin with one of `starts` (after whitespace), else it is the wrong
    /// type for `expected`.
    fn expect_kind(&mut self, starts: &[u8], expected: &dyn Expected) -> Result<u8, Error> {
        let first = self.peek()?;
        if starts.contains(&first) {
            Ok(first)
        } else {
            Err(de::Error::invalid_type(found(first), expected))
        }
    }

    /// A number where a number must be.
    fn expect_number(&mut self, expected: &dyn Expected) -> Result<Number, Error> {
        self.expect_kind(b"-0123456789", expected)?;
        self.number()
    }
}

/// The integer reads: a number without a fraction, visited as `visit_i64` / `visit_u64` (serde's
/// primitive visitors check the range).
macro_rules! integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.expect_number(&visitor)? {
                Number::Unsigned(n) => visitor.visit_u64(n),
                Number::Signed(n) => visitor.visit_i64(n),
                Number::Float(n) => Err(de::Error::invalid_type(Unexpected::Float(n), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Reader<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek()? {
            b'n' => self.literal(b"null").and_then(|()| visitor.visit_unit()),
            b't' => self
                .literal(b"true")
                .and_then(|()| visitor.visit_bool(true)),
            b'f' => self
                .literal(b"false")
                .and_then(|()| visitor.visit_bool(false)),
            b'"' => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_str(s),
                Cow::Owned(s) => visitor.visit_string(s),
            },
            b'-' | b'0'..=b'9' => match self.number()? {
                Number::Unsigned(n) => visitor.visit_u64(n),
                Number::Signed(n) => visitor.visit_i64(n),
                Number::Float(n) => visitor.visit_f64(n),
            },
            b'[' => self.items(b']', |items| visitor.visit_seq(items)),
            b'{' => self.items(b'}', |items| visitor.visit_map(items)),
            _ => Err(self.fail("expected value")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.peek()? {
            b'"' => visitor.visit_enum(Variant {
                reader: self,
                braced: false,
            }),
            b'{' => {
                self.enter()?;
                let value = visitor.visit_enum(Variant {
                    reader: self,
                    braced: true,
                })?;
                self.expect(b'}', "expected `}` after the enum's value")?;
                self.depth -= 1;
                Ok(value)
            }
            _ => Err(self.fail("expected a string or an object for an enum")),
        }
    }

    // Each read below takes only the JSON kind its type is written as, so a type's visitor is
    // not compiled for the others (a struct's `visit_seq`, a string's `visit_u64`…): serde_json
    // writes structs as objects, sequences as arrays, strings as strings.

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.expect_kind(b"tf", &visitor)? {
            b't' => self
                .literal(b"true")
                .and_then(|()| visitor.visit_bool(true)),
            _ => self
                .literal(b"false")
                .and_then(|()| visitor.visit_bool(false)),
        }
    }

    integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let n = match self.expect_number(&visitor)? {
            Number::Unsigned(n) => n as f64,
            Number::Signed(n) => n as f64,
            Number::Float(n) => n,
        };
        visitor.visit_f64(n)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect_kind(b"\"", &visitor)?;
        match self.string()? {
            Cow::Borrowed(s) => visitor.visit_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect_kind(b"n", &visitor)?;
        self.literal(b"null").and_then(|()| visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect_kind(b"[", &visitor)?;
        self.items(b']', |items| visitor.visit_seq(items))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect_kind(b"{", &visitor)?;
        self.items(b'}', |items| visitor.visit_map(items))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf ignored_any
    }
}

/// The elements of an array or the entries of an object.
struct Items<'r, 'a> {
    reader: &'r mut Reader<'a>,
    first: bool,
    /// `]` or `}`.
    close: u8,
    /// The closing byte was read.
    done: bool,
}

impl Items<'_, '_> {
    /// Whether another item follows (else the closing byte is read).
    fn next(&mut self) -> Result<bool, Error> {
        let more = self.reader.has_next(&mut self.first, self.close)?;
        self.done = !more;
        Ok(more)
    }
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.next()? {
            seed.deserialize(&mut *self.reader).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<'de> MapAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.next()? {
            return Ok(None);
        }
        if self.reader.peek()? != b'"' {
            return Err(self.reader.fail("key must be a string"));
        }
        let key = self.reader.string()?;
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.reader.expect(b':', "expected `:`")?;
        seed.deserialize(&mut *self.reader)
    }
}

/// An object's key: a string, or the number it spells for maps keyed by integers.
struct Key<'a>(Cow<'a, str>);

macro_rules! integer_key {
    ($($method:ident $visit:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.0.parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(de::Error::invalid_type(Unexpected::Str(&self.0), &visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    integer_key!(deserialize_i64 visit_i64 i64, deserialize_u64 visit_u64 u64,
        deserialize_i32 visit_i64 i64, deserialize_u32 visit_u64 u64);

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i128 u8 u16 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// An enum: `"Variant"` (a unit variant) or `{"Variant": value}` (after its `{`). One type for
/// both, so each enum's variant code is compiled once.
struct Variant<'r, 'a> {
    reader: &'r mut Reader<'a>,
    /// Written as `{"Variant": value}`.
    braced: bool,
}

impl Variant<'_, '_> {
    /// A variant with a value, written as a bare name.
    fn bare(&self, expected: &'static str) -> Error {
        de::Error::invalid_type(Unexpected::UnitVariant, &expected)
    }
}

impl<'de> EnumAccess<'de> for Variant<'_, '_> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        if self.reader.peek()? != b'"' {
            return Err(self.reader.fail("expected the variant's name"));
        }
        let name = self.reader.string()?;
        let variant = seed.deserialize(Key(name))?;
        if self.braced {
            self.reader.expect(b':', "expected `:`")?;
        }
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        if self.braced {
            de::Deserialize::deserialize(&mut *self.reader)
        } else {
            Ok(())
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        if !self.braced {
            return Err(self.bare("newtype variant"));
        }
        seed.deserialize(&mut *self.reader)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        if !self.braced {
            return Err(self.bare("tuple variant"));
        }
        de::Deserializer::deserialize_any(&mut *self.reader, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if !self.braced {
            return Err(self.bare("struct variant"));
        }
        de::Deserializer::deserialize_any(&mut *self.reader, visitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    fn both<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
    {
        let json = serde_json::to_vec(value).unwrap();
        assert_eq!(
            &from_slice::<T>(&json).unwrap(),
            value,
            "{}",
            String::from_utf8_lossy(&json)
        );
        let pretty = serde_json::to_vec_pretty(value).unwrap();
        assert_eq!(&from_slice::<T>(&pretty).unwrap(), value);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(i64),
        Tuple(u8, String),
        Struct { a: Option<bool>, b: Vec<i32> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    enum Tagged {
        One { id: i64 },
        Two { name: String, at: Option<u32> },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        text: String,
        n: i64,
        u: u64,
        small: u8,
        maybe: Option<String>,
        nothing: Option<i64>,
        list: Vec<Shape>,
        tagged: Vec<Tagged>,
        map: BTreeMap<String, i64>,
        by_id: BTreeMap<i64, String>,
        unit: (),
        #[serde(default)]
        absent: Vec<u8>,
    }

    #[test]
    fn what_serde_json_writes_reads_back_the_same() {
        both(&Everything {
            text: "quote \" backslash \\ slash / tab \t newline \n nul \u{0} é 🦀".to_owned(),
            n: i64::MIN,
            u: u64::MAX,
            small: 255,
            maybe: Some(String::new()),
            nothing: None,
            list: vec![
                Shape::Unit,
                Shape::Newtype(-7),
                Shape::Tuple(3, "x".to_owned()),
                Shape::Struct {
                    a: None,
                    b: vec![1, -2, 3],
                },
            ],
            tagged: vec![
                Tagged::One { id: 1 },
                Tagged::Two {
                    name: "n".to_owned(),
                    at: Some(9),
                },
            ],
            map: BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), -1)]),
            by_id: BTreeMap::from([(-3, "minus".to_owned()), (42, "answer".to_owned())]),
            unit: (),
            absent: vec![],
        });
    }

    #[test]
    fn every_model_the_browser_reads_reads_back_the_same() {
        use crate::models::*;
        both(&SignupOffer {
            tiers: vec![TierOffer {
                id: 1,
                name: "Small".to_owned(),
                price: "€28.00 / month".to_owned(),
                specs: "2 vCPU".to_owned(),
            }],
            regions: vec![RegionOffer {
                code: "fsn1".to_owned(),
                name: "Falkenstein".to_owned(),
            }],
            payment: PaymentForm::Stripe {
                publishable_key: "pk_test_x".to_owned(),
            },
            expiry_hours: 24,
            base_domain: "apps.example.com".to_owned(),
        });
        both(&crate::error::AppError::Validation {
            field: "slug".to_owned(),
            message: "taken".to_owned(),
        });
        both(&crate::error::AppError::Unauthenticated);
        let progress: JobProgress = serde_json::from_value(serde_json::json!([
            {"step": "hetzner_create", "state": "done", "started_at": "2026-11-26T21:05:09Z",
             "finished_at": "2026-11-26T21:05:10.123456789Z"}
        ]))
        .unwrap();
        both(&progress);
    }

    #[test]
    fn escapes_and_surrogate_pairs_are_decoded() {
        let s: String = from_slice(br#""\u00e9\ud83e\udd80\b\f\r\/""#).unwrap();
        assert_eq!(s, "é🦀\u{8}\u{c}\r/");
    }

    #[test]
    fn numbers_are_read_as_integers_unless_they_have_a_fraction() {
        assert_eq!(
            from_slice::<i64>(b"-9223372036854775808").unwrap(),
            i64::MIN
        );
        assert_eq!(
            from_slice::<u64>(b"18446744073709551615").unwrap(),
            u64::MAX
        );
        assert_eq!(from_slice::<i64>(b"-0").unwrap(), 0);
        for (text, value) in [
            ("1.5", 1.5),
            ("-2.5e3", -2500.0),
            ("1e-2", 0.01),
            ("0.1", 0.1),
        ] {
            let read: f64 = from_slice(text.as_bytes()).unwrap();
            assert!(
                (read - value).abs() <= value.abs() * 1e-15,
                "{text}: {read}"
            );
        }
        let big: f64 = from_slice(b"18446744073709551616").unwrap();
        assert!((big - 18446744073709551616.0).abs() < 1e5);
    }

    #[test]
    fn input_that_is_not_json_is_refused_with_where() {
        for bad in [
            "",
            " ",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "01",
            "1.",
            "-",
            "1e",
            "\"abc",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\u{1}\"",
            "[1] 2",
            "+1",
            "{\"a\":1",
            "[",
        ] {
            let err = from_slice::<serde::de::IgnoredAny>(bad.as_bytes())
                .expect_err(bad)
                .to_string();
            assert!(err.contains(" at byte "), "{bad:?}: {err}");
        }
        let err = from_slice::<serde::de::IgnoredAny>(&[b'['; 200])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("recursion limit exceeded"), "{err}");
        assert!(from_slice::<String>(b"\"\xff\"").is_err());
        assert!(from_slice::<f64>(b"1e400").is_err());
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_in_serdes_words() {
        let err = from_slice::<u8>(b"300").unwrap_err().to_string();
        assert_eq!(err, "invalid value: integer `300`, expected u8 at byte 3");
        let err = from_slice::<Everything>(b"{\"text\":\"x\"}")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("missing field `n`"), "{err}");
        let err = from_slice::<Tagged>(br#"{"kind":"one","id":1,"extra":2}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown field `extra`"), "{err}");
        let err = from_slice::<Everything>(b"[\"x\", 1]")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid type: array, expected struct Everything"),
            "{err}"
        );
        let err = from_slice::<String>(b"7").unwrap_err().to_string();
        assert_eq!(err, "invalid type: a number, expected a string at byte 0");
        let err = from_slice::<i64>(b"\"7\"").unwrap_err().to_string();
        assert_eq!(err, "invalid type: a string, expected i64 at byte 0");
        let err = from_slice::<i64>(b"7.5").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid type: a number with a fraction or an exponent, expected i64"),
            "{err}"
        );
        let err = from_slice::<Vec<i64>>(b"{}").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid type: object, expected a sequence"),
            "{err}"
        );
        let err = from_slice::<Shape>(br#""Newtype""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid type: unit variant, expected newtype variant"),
            "{err}"
        );
        let err = from_slice::<Shape>(br#""Nope""#).unwrap_err().to_string();
        assert!(err.starts_with("unknown variant `Nope`"), "{err}");
    }
}
