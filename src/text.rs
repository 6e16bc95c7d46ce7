//! Untrusted text made safe to show: client ids, user names and parameter names come from
//! the network and end up in the audit log, the server log and the operator's terminal
//! (`config audit`). [`printable`] escapes control characters (an escape sequence could
//! otherwise repaint or retitle the operator's terminal) and caps the length, so a
//! hostile value can neither hide in the log nor fill it.

use std::fmt::Write;

/// `s` with every control character (C0, DEL, C1, and the Unicode bidi overrides that
/// reorder what a terminal shows) written as `\u{..}` escapes, cut to at most `max`
/// characters (then ending in `…`).
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_add(8)));
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `s` needs no escaping (every character printable).
pub fn is_printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || is_bidi_control(c))
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_caps_length() {
        assert_eq!(printable("cl_1", 10), "cl_1");
        assert_eq!(printable("a\u{1b}[2Jb", 20), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\u{202e}y", 20), "x\\u{202e}y");
        assert_eq!(printable("abcdef", 3), "abc…");
        assert_eq!(
            printable("a\u{7}", usize::MAX),
            "a\\u{7}",
            "no cap, no overflow"
        );
        assert!(is_printable("Ünïcode ok"));
        assert!(!is_printable("bell\u{7}"));
    }
}
