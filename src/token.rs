//! Token kinds, wire format, generation, hashing and parsing: pure functions, no I/O.
//!
//! Format (modelled on crates.io's API tokens and GitHub's secret format):
//! `<prefix><selector><body><checksum>` where the prefix names the kind (`sgat_` access,
//! `sgrt_` refresh, `sgac_` authorization code, `sgcs_` client secret), the selector is the
//! public half (20 lowercase base36 characters: the issue time in milliseconds, then 10
//! random digits),
//! the body is the secret half (43 characters drawn uniformly from the base62 alphabet
//! with bytes from the OS CSPRNG: ≈ 256 bits) and the checksum is the CRC32 of everything
//! before it in fixed-width base62 (6 characters). The checksum lets `config` and secret scanners tell a real token from a
//! typo without touching the store.
//!
//! Tokens are stored only as the SHA-256 of the whole string ([`TokenHash`]). The public
//! [`TokenId`] is `tok_` + the selector: what logs, listings and the audit trail name, and
//! the key a presented token is looked up by, after which the stored hash is compared in
//! constant time (selector/verifier: the secret never meets an index). Because the selector
//! starts with the time, ids are issued in ascending order and the store appends each new
//! token at the end of its primary-key index instead of at a random page; bench/RESULTS.md
//! has what that is worth.
//!
//! Tokens issued before the selector existed (`<prefix><body><checksum>`, 54 characters)
//! still parse; their id is `tok_` + the first 16 hex characters of their hash, as it was.
//!
//! The base62 code is written here by hand because the crates that exist either work on
//! integers only or use a variable-width encoding, and the format needs fixed widths. The
//! body is drawn character by character (rejection sampling) rather than by encoding 32
//! random bytes as one 256-bit number: the same distribution of secrets, without a
//! big-number division on every token issued.

use std::fmt;

use rand::TryRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Base62 characters of the secret body: 43 × log2(62) ≈ 256.03 bits.
pub const BODY_LEN: usize = 43;
/// Lowercase base36 characters of the selector: 10 of milliseconds since the Unix epoch
/// (enough for 100,000 years), then 10 random ones (51.7 bits: two tokens issued in the
/// same millisecond share an id with odds of about 1 in 10^15).
pub const SELECTOR_LEN: usize = 20;
const SELECTOR_TIME_LEN: usize = 10;
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Base62 characters needed for a CRC32 (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 5;
/// Total length of every token string issued now.
pub const TOKEN_LEN: usize = PREFIX_LEN + SELECTOR_LEN + BODY_LEN + CHECKSUM_LEN;
/// Length of a token issued before selectors existed (still accepted).
pub const LEGACY_TOKEN_LEN: usize = PREFIX_LEN + BODY_LEN + CHECKSUM_LEN;

/// What a token is for; each kind has its own never-changing prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Access,
    Refresh,
    AuthorizationCode,
    ClientSecret,
}

impl TokenKind {
    pub const ALL: [TokenKind; 4] = [
        TokenKind::Access,
        TokenKind::Refresh,
        TokenKind::AuthorizationCode,
        TokenKind::ClientSecret,
    ];

    /// The prefix every token of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "sgat_",
            TokenKind::Refresh => "sgrt_",
            TokenKind::AuthorizationCode => "sgac_",
            TokenKind::ClientSecret => "sgcs_",
        }
    }

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
            TokenKind::AuthorizationCode => "authorization_code",
            TokenKind::ClientSecret => "client_secret",
        }
    }

    /// Inverse of [`TokenKind::as_str`].
    pub fn from_name(name: &str) -> Option<TokenKind> {
        TokenKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn from_prefix(s: &str) -> Option<TokenKind> {
        TokenKind::ALL
            .into_iter()
            .find(|k| s.starts_with(k.prefix()))
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a well-formed token. Messages are written for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenParseError {
    #[error("it has no scimgate prefix (tokens start with sgat_, sgrt_, sgac_ or sgcs_)")]
    MissingPrefix,
    #[error(
        "its prefix `{0}` is not a scimgate token prefix (expected sgat_, sgrt_, sgac_ or sgcs_)"
    )]
    UnknownPrefix(String),
    #[error("it is {actual} characters long; a scimgate token has {expected}")]
    InvalidLength { expected: usize, actual: usize },
    #[error(
        "it contains `{0}`, which cannot appear there in a token (only letters and digits follow the prefix, and the first 20 of them are lowercase)"
    )]
    InvalidCharacter(char),
    #[error("its checksum does not match (a character was mistyped, lost or added)")]
    InvalidChecksum,
}

/// A token string. `Debug` never prints the secret; [`Secret::expose`] is the only way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The plaintext, for showing once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

/// SHA-256 of the whole token string: the only form a token is stored in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hash a token string (whether or not it parses).
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time comparison: a presented token's hash against the stored one.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The first 8 bytes in lowercase hex (16 characters): the id of a legacy token, and
    /// the tail of a client id.
    pub fn short_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(16);
        for b in &self.0[..8] {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 15)] as char);
        }
        s
    }

    /// The id a token in the legacy format (no selector) has always had.
    fn legacy_id(&self) -> TokenId {
        TokenId(format!("{}{}", TokenId::PREFIX, self.short_hex()))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.short_hex()[..8])
    }
}

/// Public, loggable token id: `tok_` + the token's selector (20 base36 characters), or for
/// a legacy token `tok_` + the first 16 hex characters of its hash. Ids are lowercase and
/// read back in any case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(String);

impl TokenId {
    pub const PREFIX: &'static str = "tok_";

    /// Parse an id an operator typed, in any case: `tok_` + 20 base36 characters, or a
    /// legacy `tok_` + 16 hex characters.
    pub fn parse(s: &str) -> Option<TokenId> {
        let prefix = s.get(..Self::PREFIX.len())?;
        if !prefix.eq_ignore_ascii_case(Self::PREFIX) {
            return None;
        }
        let rest = &s[Self::PREFIX.len()..];
        let well_formed = (rest.len() == SELECTOR_LEN
            && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            || (rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()));
        well_formed.then(|| TokenId(format!("{}{}", Self::PREFIX, rest.to_ascii_lowercase())))
    }

    /// Wrap an id read back from the store.
    pub fn from_stored(s: String) -> TokenId {
        TokenId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A token that has just been generated: the plaintext (to show once), its hash and id.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub kind: TokenKind,
    pub secret: Secret,
    pub hash: TokenHash,
    pub id: TokenId,
}

/// A token string that parsed: its kind, hash and id. Parsing does not prove it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub kind: TokenKind,
    pub hash: TokenHash,
    pub id: TokenId,
}

/// Generate a new token of `kind` issued at `issued_at` (the `issued_at` its record will
/// carry): the selector from that second (the milliseconds within it from the system
/// clock) and the OS CSPRNG, the body from the OS CSPRNG.
///
/// The selector's time is the record's issue time, not merely the system's, because the
/// store finds live short-lived tokens by id range ([`first_id_issued_at`]); a server
/// run on a test clock must give ids that agree with it.
pub fn generate(kind: TokenKind, issued_at: i64) -> NewToken {
    let within = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_millis()));
    let secs = u64::try_from(issued_at).unwrap_or(0);
    generate_at(kind, secs.saturating_mul(1000).saturating_add(within))
}

/// The smallest id a token issued at or after `secs` (Unix seconds) can have: `tok_` and
/// the selector's time digits. Ids compare as strings in issue-time order, so the tokens
/// issued since `secs` are the ids from this one on.
pub fn first_id_issued_at(secs: i64) -> String {
    let millis = u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
    let selector = selector(millis, 0);
    format!("{}{}", TokenId::PREFIX, &selector[..SELECTOR_TIME_LEN])
}

/// [`generate`] with the selector's time given (milliseconds since the Unix epoch).
fn generate_at(kind: TokenKind, millis: u64) -> NewToken {
    // One read of the OS RNG for the selector's random half and the body's candidates.
    let mut bytes = [0u8; 64];
    os_random(&mut bytes);
    let (random, candidates) = bytes.split_at(8);
    let random = u64::from_be_bytes(random.try_into().unwrap_or_default());
    let selector = selector(millis, random);
    let mut s = String::with_capacity(TOKEN_LEN);
    s.push_str(kind.prefix());
    s.push_str(&selector);
    push_random_body(&mut s, candidates);
    let crc = checksum(s.as_bytes());
    s.push_str(std::str::from_utf8(&crc).unwrap_or_default());
    let hash = TokenHash::of(&s);
    NewToken {
        kind,
        id: TokenId(format!("{}{selector}", TokenId::PREFIX)),
        hash,
        secret: Secret(s),
    }
}

/// Fill `buf` from the operating system's CSPRNG (getrandom(2)): every secret comes from
/// the kernel, never from a user-space generator whose state a fork or a VM snapshot
/// could duplicate. The one place scimgate draws random bytes (tokens, session ids, SCIM
/// resource ids).
pub fn os_random(buf: &mut [u8]) {
    // The OS RNG failing is not recoverable and not a client's doing.
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// Append [`BODY_LEN`] characters drawn uniformly from the base62 alphabet: random bytes
/// below 248 (4 × 62) taken modulo 62, the others dropped (rejection sampling, so every
/// character is equally likely). 43 characters carry 43 × log2(62) ≈ 256.03 bits.
/// `candidates` (56 bytes give 54 usable ones on average) are used first; should they run
/// short, more are read from the OS.
fn push_random_body(s: &mut String, candidates: &[u8]) {
    let mut wanted = BODY_LEN;
    let take = |bytes: &[u8], s: &mut String, wanted: &mut usize| {
        for &b in bytes {
            if *wanted == 0 {
                break;
            }
            if b < 248 {
                s.push(char::from(ALPHABET[usize::from(b % 62)]));
                *wanted -= 1;
            }
        }
    };
    take(candidates, s, &mut wanted);
    while wanted > 0 {
        let mut more = [0u8; 16];
        os_random(&mut more);
        take(&more, s, &mut wanted);
    }
}

/// The checksum of a token's head: its CRC-32 as 6 base62 digits (62⁶ > 2³²).
fn checksum(head: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut v = crc32fast::hash(head);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
    digits
}

/// Check a token string's form (prefix, length, charset, checksum) without any lookup.
pub fn parse(s: &str) -> Result<ParsedToken, TokenParseError> {
    let kind = match TokenKind::from_prefix(s) {
        Some(kind) => kind,
        None => {
            return Err(match s.find('_') {
                Some(i) if i > 0 && i <= 8 && s[..i].bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    TokenParseError::UnknownPrefix(s[..=i].to_string())
                }
                _ => TokenParseError::MissingPrefix,
            });
        }
    };
    let rest = &s[PREFIX_LEN..];
    // A byte scan first (a vector loop); the characters are decoded only to name a bad one.
    if !rest
        .bytes()
        .fold(true, |ok, b| ok & b.is_ascii_alphanumeric())
        && let Some(c) = rest.chars().find(|c| !c.is_ascii_alphanumeric())
    {
        return Err(TokenParseError::InvalidCharacter(c));
    }
    if s.len() != TOKEN_LEN && s.len() != LEGACY_TOKEN_LEN {
        return Err(TokenParseError::InvalidLength {
            expected: TOKEN_LEN,
            actual: s.chars().count(),
        });
    }
    // The selector is lowercase base36: the id is made of it and ids are lowercase.
    if s.len() == TOKEN_LEN
        && let Some(c) = s[PREFIX_LEN..PREFIX_LEN + SELECTOR_LEN]
            .chars()
            .find(char::is_ascii_uppercase)
    {
        return Err(TokenParseError::InvalidCharacter(c));
    }
    let (head, checksum) = s.split_at(s.len() - CHECKSUM_LEN);
    if checksum.as_bytes() != self::checksum(head.as_bytes()) {
        return Err(TokenParseError::InvalidChecksum);
    }
    let hash = TokenHash::of(s);
    let id = if s.len() == TOKEN_LEN {
        let mut id = String::with_capacity(TokenId::PREFIX.len() + SELECTOR_LEN);
        id.push_str(TokenId::PREFIX);
        id.push_str(&s[PREFIX_LEN..PREFIX_LEN + SELECTOR_LEN]);
        TokenId(id)
    } else {
        hash.legacy_id()
    };
    Ok(ParsedToken { kind, id, hash })
}

/// The selector: `millis` as 10 base36 digits (fixed width, so ids sort by issue time),
/// then 10 base36 digits of `random` (36^10 < 2^64, so each is near-uniform).
fn selector(millis: u64, mut random: u64) -> String {
    let mut digits = [b'0'; SELECTOR_LEN];
    let mut t = millis;
    for d in digits[..SELECTOR_TIME_LEN].iter_mut().rev() {
        *d = BASE36[(t % 36) as usize];
        t /= 36;
    }
    for d in digits[SELECTOR_TIME_LEN..].iter_mut() {
        *d = BASE36[(random % 36) as usize];
        random /= 36;
    }
    String::from_utf8(digits.to_vec()).unwrap_or_default()
}

#[cfg(test)]
/// Big-endian bytes as a base62 number, left-padded with `0` to exactly `width` digits.
/// Callers pick `width` so that the value always fits.
///
/// Long division by 62⁵ on 32-bit limbs: five digits per pass over the number, with
/// 64-bit arithmetic by a constant (a multiplication), rather than one digit per pass over
/// the bytes. Every token is generated and every presented token parsed through here.
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    const CHUNK: u64 = 62 * 62 * 62 * 62 * 62; // 916_132_832 < 2^32
    let mut limbs: Vec<u32> = Vec::with_capacity(bytes.len().div_ceil(4));
    let head = bytes.len() % 4;
    if head != 0 {
        limbs.push(
            bytes[..head]
                .iter()
                .fold(0, |a, b| (a << 8) | u32::from(*b)),
        );
    }
    for chunk in bytes[head..].chunks_exact(4) {
        limbs.push(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
    let mut digits = vec![b'0'; width];
    let mut pos = width;
    while pos > 0 {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / CHUNK) as u32;
            rem = cur % CHUNK;
        }
        for _ in 0..5 {
            if pos == 0 {
                break;
            }
            pos -= 1;
            digits[pos] = ALPHABET[(rem % 62) as usize];
            rem /= 62;
        }
    }
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The original one-digit-per-pass division: the format's reference.
    fn base62_reference(bytes: &[u8], width: usize) -> String {
        let mut num: Vec<u8> = bytes.to_vec();
        let mut digits = vec![b'0'; width];
        for slot in digits.iter_mut().rev() {
            let mut rem: u32 = 0;
            for byte in num.iter_mut() {
                let acc = (rem << 8) | u32::from(*byte);
                *byte = (acc / 62) as u8;
                rem = acc % 62;
            }
            *slot = ALPHABET[rem as usize];
        }
        String::from_utf8(digits).unwrap()
    }

    /// The prefixes are part of every token ever issued (IdPs hold them for years, and
    /// secret scanners match them): they must never change (crates.io's
    /// `test_persistent_prefixes`). A change here is a breaking change, not a refactor.
    #[test]
    fn persistent_prefixes() {
        let prefixes: Vec<_> = TokenKind::ALL.iter().map(|k| k.prefix()).collect();
        assert_eq!(prefixes, ["sgat_", "sgrt_", "sgac_", "sgcs_"]);
        assert_eq!(TokenId::PREFIX, "tok_");
        for kind in TokenKind::ALL {
            let t = generate(kind, 1_800_000_000);
            assert!(t.secret.expose().starts_with(kind.prefix()));
            assert!(t.id.as_str().starts_with("tok_"));
        }
    }

    proptest! {
        #[test]
        fn base62_matches_the_reference(bytes in proptest::collection::vec(any::<u8>(), 0..40), extra in 0usize..4) {
            // Wide enough for any value of that many bytes (log62(256) < 1.35).
            let width = bytes.len() * 135 / 100 + 1 + extra;
            prop_assert_eq!(base62_fixed(&bytes, width), base62_reference(&bytes, width));
        }
    }

    proptest! {
        #[test]
        fn the_checksum_is_the_crc_in_fixed_width_base62(head in proptest::collection::vec(any::<u8>(), 0..80)) {
            let crc = crc32fast::hash(&head).to_be_bytes();
            let digits = checksum(&head);
            prop_assert_eq!(
                std::str::from_utf8(&digits).unwrap(),
                base62_reference(&crc, CHECKSUM_LEN)
            );
        }
    }

    #[test]
    fn the_body_drops_bytes_that_would_bias_it() {
        // 248..=255 would make the first eight characters likelier: they are skipped.
        let mut candidates = vec![248u8, 255, 0, 61, 62, 247];
        candidates.extend(std::iter::repeat_n(1u8, 50));
        let mut s = String::new();
        push_random_body(&mut s, &candidates);
        assert_eq!(s.len(), BODY_LEN);
        assert!(s.starts_with("0z0z1"), "{s}");
        // Too few usable candidates: the rest comes from the OS, still in the alphabet.
        let mut s = String::new();
        push_random_body(&mut s, &[0xff; 56]);
        assert_eq!(s.len(), BODY_LEN);
        assert!(s.bytes().all(|b| ALPHABET.contains(&b)), "{s}");
    }

    #[test]
    fn body_characters_are_spread_over_the_whole_alphabet() {
        // 2,000 bodies = 86,000 characters, ≈ 1,387 per character: each within ±20 %.
        let mut counts = [0usize; 62];
        for _ in 0..2000 {
            let t = generate(TokenKind::Access, 1_800_000_000);
            let body = &t.secret.expose()[PREFIX_LEN + SELECTOR_LEN..][..BODY_LEN];
            for b in body.bytes() {
                counts[ALPHABET.iter().position(|a| *a == b).unwrap()] += 1;
            }
        }
        let expected = 2000 * BODY_LEN / 62;
        for (i, n) in counts.iter().enumerate() {
            assert!(
                n * 10 > expected * 8 && n * 10 < expected * 12,
                "{} drawn {n} times, expected ≈ {expected}",
                ALPHABET[i] as char
            );
        }
    }

    #[test]
    fn generated_tokens_parse_back_with_same_kind_hash_and_id() {
        for kind in TokenKind::ALL {
            let t = generate(kind, 1_800_000_000);
            assert!(t.secret.expose().starts_with(kind.prefix()));
            assert_eq!(t.secret.expose().len(), TOKEN_LEN);
            let p = parse(t.secret.expose()).expect("a fresh token parses");
            assert_eq!((p.kind, p.hash, p.id), (kind, t.hash, t.id));
        }
    }

    #[test]
    fn two_tokens_differ() {
        let a = generate(TokenKind::Access, 1_800_000_000);
        let b = generate(TokenKind::Access, 1_800_000_000);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = generate(TokenKind::Access, 1_800_000_000);
        let printed = format!("{t:?}");
        assert!(!printed.contains(t.secret.expose()), "{printed}");
        assert!(printed.contains("REDACTED"));
    }

    #[test]
    fn typed_errors() {
        let t = generate(TokenKind::Refresh, 1_800_000_000);
        let s = t.secret.expose();
        assert_eq!(parse("hello"), Err(TokenParseError::MissingPrefix));
        assert_eq!(parse(""), Err(TokenParseError::MissingPrefix));
        assert_eq!(
            parse("ghp_abc"),
            Err(TokenParseError::UnknownPrefix("ghp_".into()))
        );
        assert!(matches!(
            parse(&s[..s.len() - 1]),
            Err(TokenParseError::InvalidLength {
                expected: TOKEN_LEN,
                actual
            }) if actual == TOKEN_LEN - 1
        ));
        assert!(matches!(
            parse(&format!("{s}x")),
            Err(TokenParseError::InvalidLength { .. })
        ));
        let mut bad = s.to_string();
        bad.replace_range(10..11, "-");
        assert_eq!(parse(&bad), Err(TokenParseError::InvalidCharacter('-')));
        let spotfire_style = "sgat_oph0rpm75a770ai75icjdo9aoq:kat2t8ushjgqqkagelo4jm1ksj";
        assert_eq!(
            parse(spotfire_style),
            Err(TokenParseError::InvalidCharacter(':'))
        );
    }

    /// Found by fuzzing (fuzz/regressions/token_parse): a token whose selector had upper-case
    /// letters and a matching checksum parsed, with an id in upper case that
    /// `TokenId::parse` reads back as another (lowercase) id.
    #[test]
    fn a_selector_in_upper_case_is_refused() {
        let t = generate(TokenKind::Access, 1_800_000_000);
        let s = t.secret.expose();
        let mut head = s[..s.len() - CHECKSUM_LEN].to_string();
        head.replace_range(
            PREFIX_LEN..PREFIX_LEN + SELECTOR_LEN,
            &head[PREFIX_LEN..PREFIX_LEN + SELECTOR_LEN].to_ascii_uppercase(),
        );
        let upper = head[PREFIX_LEN..]
            .chars()
            .find(char::is_ascii_uppercase)
            .unwrap();
        let crc = crc32fast::hash(head.as_bytes());
        let forged = format!("{head}{}", base62_fixed(&crc.to_be_bytes(), CHECKSUM_LEN));
        assert_eq!(
            parse(&forged),
            Err(TokenParseError::InvalidCharacter(upper))
        );
        // The fuzzer's input: a seed token with `TSWsb` typed in the selector.
        let found = "sgat_00mx93d8qnp9sxnTSWsbCBpWUWsbCBpWUedoB6SJ95Ypuie2cPzSfldfAd0rX433Ii1sA";
        assert_eq!(parse(found), Err(TokenParseError::InvalidCharacter('T')));
        // Upper case is fine in the body (base62) and in a legacy token.
        assert!(parse(s).is_ok());
        assert!(parse(&legacy_token(TokenKind::Refresh)).is_ok());
    }

    /// A token in the format issued before selectors existed: prefix, body, checksum.
    fn legacy_token(kind: TokenKind) -> String {
        let mut s = String::from(kind.prefix());
        s.push_str(&base62_fixed(&rand::random::<[u8; 32]>(), BODY_LEN));
        let crc = crc32fast::hash(s.as_bytes());
        s.push_str(&base62_fixed(&crc.to_be_bytes(), CHECKSUM_LEN));
        s
    }

    #[test]
    fn token_ids_parse_in_any_case_and_junk_is_refused() {
        let t = generate(TokenKind::Access, 1_800_000_000);
        assert_eq!(TokenId::parse(t.id.as_str()), Some(t.id.clone()));
        assert_eq!(t.id.as_str().len(), 4 + SELECTOR_LEN);
        assert!(t.id.as_str().bytes().all(|b| !b.is_ascii_uppercase()));
        let upper = format!("TOK_{}", t.id.as_str()[4..].to_uppercase());
        assert_eq!(TokenId::parse(&upper), Some(t.id.clone()));
        let legacy = parse(&legacy_token(TokenKind::Access)).unwrap().id;
        let upper = format!("TOK_{}", legacy.as_str()[4..].to_uppercase());
        assert_eq!(TokenId::parse(&upper), Some(legacy));
        assert_eq!(TokenId::parse("tok_123"), None);
        assert_eq!(TokenId::parse("tok_zzzzzzzzzzzzzzzz"), None);
        assert_eq!(TokenId::parse("tok_0000000000000000000-"), None);
        assert_eq!(TokenId::parse(t.secret.expose()), None);
    }

    #[test]
    fn the_id_is_the_selector_the_token_carries() {
        let t = generate(TokenKind::Refresh, 1_800_000_000);
        let selector = &t.secret.expose()[PREFIX_LEN..PREFIX_LEN + SELECTOR_LEN];
        assert_eq!(t.id.as_str(), format!("tok_{selector}"));
        // The id says nothing about the secret half: another body, same id.
        let p = parse(t.secret.expose()).unwrap();
        assert_eq!(p.id, t.id);
    }

    #[test]
    fn ids_ascend_with_the_issue_time() {
        // Each millisecond's ids sort after the previous one's, whatever the random bits;
        // this is what lets the store append new tokens instead of inserting at random.
        let mut last = generate_at(TokenKind::Access, 1_795_000_000_000).id;
        for ms in (1_795_000_000_001..1_795_000_000_200u64).chain([36u64.pow(10) - 1]) {
            let id = generate_at(TokenKind::Access, ms).id;
            assert!(id > last, "{id} after {last}");
            last = id;
        }
        // And the real clock's ids are in order too.
        let a = generate(TokenKind::Access, 1_800_000_000);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = generate(TokenKind::Access, 1_800_000_000);
        assert!(b.id > a.id);
    }

    #[test]
    fn legacy_tokens_still_parse_with_their_old_id() {
        for kind in TokenKind::ALL {
            let s = legacy_token(kind);
            assert_eq!(s.len(), LEGACY_TOKEN_LEN);
            let p = parse(&s).expect("a legacy token parses");
            let hash = TokenHash::of(&s);
            assert_eq!(p.kind, kind);
            assert_eq!(p.hash, hash);
            assert_eq!(p.id.as_str(), format!("tok_{}", hash.short_hex()));
            let mut typo = s.clone();
            typo.replace_range(9..10, if &s[9..10] == "a" { "b" } else { "a" });
            assert_eq!(parse(&typo), Err(TokenParseError::InvalidChecksum));
        }
    }

    #[test]
    fn base62_is_fixed_width_and_ordered() {
        assert_eq!(base62_fixed(&[0, 0, 0, 0], 6), "000000");
        assert_eq!(base62_fixed(&[0, 0, 0, 61], 6), "00000z");
        assert_eq!(base62_fixed(&[0, 0, 0, 62], 6), "000010");
        assert_eq!(base62_fixed(&u32::MAX.to_be_bytes(), 6), "4gfFC3");
        assert_eq!(base62_fixed(&[0xff; 32], BODY_LEN).len(), BODY_LEN);
        assert_eq!(base62_fixed(&[], 3), "000");
        assert_eq!(base62_fixed(&[61], 1), "z");
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_rejected(pos in 0usize..TOKEN_LEN, replacement in 0usize..62) {
            let t = generate(TokenKind::Access, 1_800_000_000);
            let s = t.secret.expose();
            let new_char = ALPHABET[replacement] as char;
            prop_assume!(s.as_bytes()[pos] as char != new_char);
            let mut changed = s.to_string();
            changed.replace_range(pos..pos + 1, &new_char.to_string());
            prop_assert!(parse(&changed).is_err(), "{changed} was accepted");
        }

        #[test]
        fn any_dropped_character_is_rejected(pos in 0usize..TOKEN_LEN) {
            let t = generate(TokenKind::ClientSecret, 1_800_000_000);
            let mut changed = t.secret.expose().to_string();
            changed.remove(pos);
            prop_assert!(parse(&changed).is_err());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }
    }
}
