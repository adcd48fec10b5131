//! Small helpers shared by the JSON writers: string escaping and number formatting without
//! allocation.

use std::io::{self, Write};

/// Writes `s` as a JSON string literal, quotes included (RFC 8259: `"`, `\` and control
/// characters escaped; everything else, non-ASCII included, passed through as UTF-8).
pub(crate) fn write_str<W: Write + ?Sized>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(b"\"")?;
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.write_all(&bytes[start..i])?;
        if escape.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_all(escape)?;
        }
        start = i + 1;
    }
    out.write_all(&bytes[start..])?;
    out.write_all(b"\"")
}

/// `s` as a JSON string literal.
pub(crate) fn quoted(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    write_str(&mut v, s).expect("writing to a Vec cannot fail");
    v
}

/// Writes an unsigned integer.
#[inline]
pub(crate) fn write_u64<W: Write + ?Sized>(out: &mut W, n: u64) -> io::Result<()> {
    out.write_all(itoa::Buffer::new().format(n).as_bytes())
}

/// Writes nanoseconds as microseconds with three decimals, exactly (`1234567` -> `1234.567`).
#[inline]
pub(crate) fn write_us<W: Write + ?Sized>(out: &mut W, ns: u64) -> io::Result<()> {
    let mut buf = itoa::Buffer::new();
    out.write_all(buf.format(ns / 1000).as_bytes())?;
    let frac = (ns % 1000) as usize;
    let digits = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    out.write_all(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        String::from_utf8(quoted(x)).unwrap()
    }

    #[test]
    fn escapes_like_a_json_parser_expects() {
        for name in [
            "plain",
            "quote\"d",
            "back\\slash",
            "comma, <T, U>",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}",
            "ünïcødé ✓ 🦀",
            "",
        ] {
            let encoded = s(name);
            let decoded: String = serde_json::from_str(&encoded).unwrap();
            assert_eq!(decoded, name, "{encoded}");
        }
        assert_eq!(s("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn microseconds_keep_nanoseconds() {
        let mut v = Vec::new();
        for (ns, text) in [
            (0, "0.000"),
            (1, "0.001"),
            (999, "0.999"),
            (1000, "1.000"),
            (1_234_567, "1234.567"),
        ] {
            v.clear();
            write_us(&mut v, ns).unwrap();
            assert_eq!(std::str::from_utf8(&v).unwrap(), text);
        }
    }
}
