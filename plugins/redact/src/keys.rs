//! Which names are sensitive: attribute keys, query parameter names, header names and the keys of `key=value`
//! pairs in text, matched against globs without regard to case or separator.

use ndotel_api::BoxError;
use regex::{RegexSet, RegexSetBuilder};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// A bounded cache of verdicts by name, shared by the key matcher and the redactor's key classes.
///
/// The first names seen each take a slot of their own, picked by a cheap hash of the name and filled once: a span's
/// usual keys are found there with one atomic load and one comparison, without a lock. A name whose slot another
/// name took is looked up in the shared map, hashed with foldhash (seeded per process: names are short and looked
/// up on every span, where SipHash cost more than the rest of the lookup). Either way the verdict is the judge's
/// on that very name: which names got slots (an attacker's, say) changes only how fast a lookup is.
#[derive(Debug)]
pub(super) struct VerdictCache<T> {
    slots: Box<[Slot<T>]>,
    map: RwLock<HashMap<Box<str>, T, foldhash::fast::RandomState>>,
}

impl<T: Copy> VerdictCache<T> {
    pub(super) fn new() -> Self {
        VerdictCache {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            map: RwLock::new(HashMap::default()),
        }
    }

    /// The remembered verdict on `name`, else `judge`'s, remembered while fewer than [`CACHE_LIMIT`] are.
    pub(super) fn get_or(&self, name: &str, judge: impl FnOnce() -> T) -> T {
        let slot = &self.slots[slot_of(name.as_bytes())];
        let taken = match slot.get() {
            Some((held, verdict)) if **held == *name => return *verdict,
            taken => taken.is_some(),
        };
        let verdict = self.shared(name, judge);
        if !taken && name.len() <= CACHED_NAME_LIMIT {
            let _ = slot.set((name.into(), verdict));
        }
        verdict
    }

    fn shared(&self, name: &str, judge: impl FnOnce() -> T) -> T {
        let mut full = true;
        if let Ok(cache) = self.map.read() {
            if let Some(&verdict) = cache.get(name) {
                return verdict;
            }
            full = cache.len() >= CACHE_LIMIT;
        }
        let verdict = judge();
        // Once full, no write lock is taken (it would stall every reader on each new name). Long names (keys an
        // attacker wrote into a log line) are never kept: the cache's memory stays bounded by count and size.
        if !full
            && name.len() <= CACHED_NAME_LIMIT
            && let Ok(mut cache) = self.map.write()
        {
            cache.insert(name.into(), verdict);
        }
        verdict
    }
}

/// A name and its verdict, set once.
type Slot<T> = OnceLock<(Box<str>, T)>;

/// How many names get a slot of their own.
const SLOTS: usize = 256;

/// A name's slot: its length and three of its bytes, mixed.
fn slot_of(name: &[u8]) -> usize {
    let n = name.len();
    let at = |i: usize| name.get(i).map_or(0, |&b| usize::from(b));
    (n.wrapping_mul(0x9E37)
        ^ at(0).wrapping_mul(31)
        ^ at(n / 2).wrapping_mul(7)
        ^ at(n.wrapping_sub(1)))
        % SLOTS
}

/// How many distinct names the verdict cache holds; past that (attacker-chosen header names, say) names are
/// matched afresh each time.
const CACHE_LIMIT: usize = 4096;

/// The longest name the verdict cache keeps, in bytes.
const CACHED_NAME_LIMIT: usize = 128;

/// Attribute-key globs redacted by default. `*x*` matches `x` anywhere in the key, unless the key's last word says
/// it counts or describes the secret rather than holds it ([`DESCRIBING_WORDS`]: `tokens_used`, `password_length`,
/// `session_count`); a glob without `*` matches the whole key or whole words of it (`pwd` matches `db.pwd`,
/// `user-pwd` and `userPwd`, not `pwdx`). Case and the separators `.`, `-`, `_` and space do not matter:
/// `*api_key*` also matches `X-Api-Key` and `api.key`. Keys are compared after Unicode compatibility normalisation
/// (NFKC) with default-ignorable characters removed, so `ｐａｓｓｗｏｒｄ` and `pass\u{200B}word` are `password`.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "*authorization*",
    "*password*",
    "*passwd*",
    "*passphrase*",
    "*passcode*",
    "*secret*",
    "*token*",
    "*cookie*",
    "*session*",
    "*credential*",
    "*signature*",
    "*api_key*",
    "*apikey*",
    "*access_key*",
    "*accesskey*",
    "*private_key*",
    "*privatekey*",
    "*bearer*",
    "*jwt*",
    "*csrf*",
    "*xsrf*",
    "pwd",
    "pw",
    "pass",
    "key",
    "sig",
    "auth",
    "sid",
    "otp",
    "pin",
    "cvv",
    "cvc",
    "ssn",
];

/// Query parameter names redacted inside URLs by default, besides those matching the key globs.
pub const DEFAULT_QUERY_PARAMS: &[&str] =
    &["code", "ticket", "assertion", "samlrequest", "samlresponse"];

/// Names normalised for matching: ASCII lower case, `.`, `-` and space as `_`.
const fn norm(c: u8) -> u8 {
    match c {
        b'-' | b'.' | b' ' => b'_',
        c => c.to_ascii_lowercase(),
    }
}

/// Case- and separator-insensitive globs over names. The usual shapes (`*x*`, `x`, `x*`, `*x`) are matched on a
/// normalised copy of the name without a regex: keys are checked on every span.
#[derive(Debug)]
pub struct KeyMatcher {
    /// `*x*` (`whole = false`) and bare words (`whole = true`), bucketed by first byte.
    needles: Vec<Vec<Needle>>,
    prefixes: Vec<Box<[u8]>>,
    suffixes: Vec<Box<[u8]>>,
    general: Option<RegexSet>,
    /// Verdicts by name: spans repeat the same few keys, so a lookup replaces the scan.
    cache: VerdictCache<bool>,
}

#[derive(Debug, Clone)]
struct Needle {
    bytes: Box<[u8]>,
    whole: bool,
}

impl KeyMatcher {
    /// Compiles `globs`; a glob the fast shapes do not cover becomes an anchored case-insensitive regex.
    pub fn new<S: AsRef<str>>(globs: &[S]) -> Result<Self, BoxError> {
        let mut m = KeyMatcher {
            needles: vec![Vec::new(); 256],
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            general: None,
            cache: VerdictCache::new(),
        };
        let mut general = Vec::new();
        for glob in globs {
            let glob = glob.as_ref();
            let inner: Box<[u8]> = glob.trim_matches('*').bytes().map(norm).collect();
            let stars = glob.matches('*').count();
            let (lead, trail) = (glob.starts_with('*'), glob.ends_with('*'));
            match (stars, lead, trail) {
                _ if inner.is_empty() && stars > 0 => general.push(glob_to_regex(glob)),
                (0, _, _) => m.push_needle(inner, true),
                (2, true, true) if glob.len() > 2 => m.push_needle(inner, false),
                (1, false, true) => m.prefixes.push(inner),
                (1, true, false) => m.suffixes.push(inner),
                _ => general.push(glob_to_regex(glob)),
            }
        }
        if !general.is_empty() {
            m.general = Some(
                RegexSetBuilder::new(general)
                    .case_insensitive(true)
                    .build()?,
            );
        }
        Ok(m)
    }

    fn push_needle(&mut self, bytes: Box<[u8]>, whole: bool) {
        if let Some(&first) = bytes.first() {
            self.needles[first as usize].push(Needle { bytes, whole });
        }
    }

    /// Whether `name` matches any glob.
    pub fn is_match(&self, name: &str) -> bool {
        self.cache.get_or(name, || self.scan(name))
    }

    fn scan(&self, name: &str) -> bool {
        if !name.is_ascii() {
            let folded = fold(name);
            return self.scan_folded(&folded, name);
        }
        self.scan_folded(name, name)
    }

    /// [`KeyMatcher::scan`] of `name` once folded; the general globs also see the `original`.
    fn scan_folded(&self, name: &str, original: &str) -> bool {
        let mut stack = [0u8; 128];
        let mut heap = Vec::new();
        let normed: &[u8] = if name.len() * 2 <= stack.len() {
            let n = normalise(name.as_bytes(), &mut stack);
            &stack[..n]
        } else {
            heap.resize(name.len() * 2, 0);
            let n = normalise(name.as_bytes(), &mut heap);
            &heap[..n]
        };
        self.matches_normalised(normed)
            || self
                .general
                .as_ref()
                .is_some_and(|set| set.is_match(name) || set.is_match(original))
    }

    fn matches_normalised(&self, key: &[u8]) -> bool {
        let last_word = key
            .rsplit(|c| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or_default();
        let describes = last_word.len() < key.len()
            && DESCRIBING_WORDS.iter().any(|w| w.as_bytes() == last_word);
        // `tokens_used` counts tokens and `key_length` measures a key: neither holds one.
        let found = !describes
            && (0..key.len()).any(|i| {
                self.needles[key[i] as usize].iter().any(|n| {
                    let end = i + n.bytes.len();
                    end <= key.len()
                        && key[i..end] == *n.bytes
                        && (!n.whole
                            || ((i == 0 || !key[i - 1].is_ascii_alphanumeric())
                                && (end == key.len() || !key[end].is_ascii_alphanumeric())))
                })
            });
        found
            || self.prefixes.iter().any(|p| key.starts_with(p))
            || self.suffixes.iter().any(|s| key.ends_with(s))
    }
}

/// Last words of a key that make it describe a secret rather than hold it: `*token*` does not match `tokens_used`
/// or `token_count` (their values are numbers and kinds), while `refresh_tokens` and `token_id` still match.
pub const DESCRIBING_WORDS: &[&str] = &[
    "count",
    "counts",
    "used",
    "total",
    "limit",
    "len",
    "length",
    "size",
    "max",
    "min",
    "num",
    "remaining",
    "type",
    "kind",
    "expires",
    "expiry",
    "ttl",
    "usage",
    "format",
];

/// Whether `c` is a default-ignorable code point (Unicode's `Default_Ignorable_Code_Point`): it renders as nothing
/// (zero-width space and joiners, soft hyphen, bidirectional marks, variation selectors, tags).
pub fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `name` in Unicode compatibility form (NFKC: fullwidth and styled letters become plain ones) without
/// default-ignorable characters.
pub fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    name.chars()
        .filter(|c| !is_default_ignorable(*c))
        .nfkc()
        .filter(|c| !is_default_ignorable(*c))
        .collect()
}

/// Writes `name` normalised into `out` (which holds at least twice its length), with a `_` where a lower-case
/// letter or digit is followed by an upper-case one (`userPwd` → `user_pwd`); returns the length written.
fn normalise(name: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    let mut prev_lower = false;
    for &c in name {
        if prev_lower && c.is_ascii_uppercase() {
            out[n] = b'_';
            n += 1;
        }
        out[n] = norm(c);
        n += 1;
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    n
}

/// Turns a `*` glob into an anchored regex.
fn glob_to_regex(glob: &str) -> String {
    let parts: Vec<String> = glob.split('*').map(regex::escape).collect();
    format!("^{}$", parts.join(".*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_and_one_sharing_its_slot_each_keep_their_verdict() {
        let cache = VerdictCache::new();
        let a = "password";
        let b = (0..)
            .map(|i| format!("k{i}"))
            .find(|n| slot_of(n.as_bytes()) == slot_of(a.as_bytes()))
            .expect("a name in the same slot");
        assert!(cache.get_or(a, || true));
        assert!(!cache.get_or(&b, || false));
        assert!(cache.get_or(a, || panic!("remembered in its slot")));
        assert!(!cache.get_or(&b, || panic!("remembered in the shared map")));
    }

    #[test]
    fn every_name_keeps_its_verdict_whoever_took_the_slots_and_filled_the_map() {
        // An attacker's names come first: they take every slot and fill the shared map past its limit.
        let m = KeyMatcher::new(DEFAULT_REDACT_KEYS).expect("defaults compile");
        for i in 0..CACHE_LIMIT + 4 * SLOTS {
            assert!(!m.is_match(&format!("x-attacker-{i}")));
        }
        for _ in 0..2 {
            assert!(m.is_match("password"));
            assert!(m.is_match("http.request.header.authorization"));
            assert!(!m.is_match("http.route"));
            assert!(!m.is_match("url.path"));
        }
    }

    #[test]
    fn globs_of_every_shape_match_regardless_of_case_and_separators() {
        let m =
            KeyMatcher::new(&["*token*", "x-api-*", "*_secret", "Cookie", "a*b*c", "pwd"]).unwrap();
        for yes in [
            "Auth.TOKEN.x",
            "X-API-key",
            "x.api.key",
            "client_SECRET",
            "client-secret",
            "cookie",
            "aXbYc",
            "db.pwd",
            "user-pwd",
            "userPwd",
            "PWD",
            "accessToken",
        ] {
            assert!(m.is_match(yes), "{yes}");
        }
        for no in [
            "url.path",
            "x-apikey",
            "secret_client",
            "cookies",
            "acb",
            "pwdx",
            "xpwd",
            "",
        ] {
            assert!(!m.is_match(no), "{no}");
        }
    }

    #[test]
    fn the_defaults_cover_the_usual_spellings() {
        let m = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        for yes in [
            "password",
            "db.password",
            "PASSWD",
            "pwd",
            "user_pw",
            "pass",
            "passphrase",
            "api-key",
            "X-Api-Key",
            "apiKey",
            "key",
            "aws.access_key_id",
            "AWS_SECRET_ACCESS_KEY",
            "access-token",
            "refresh_token",
            "id_token",
            "http.request.header.authorization",
            "http.request.header.proxy-authorization",
            "http.request.header.cookie",
            "http.response.header.set-cookie",
            "session_id",
            "JSESSIONID",
            "sid",
            "sig",
            "x-amz-signature",
            "client_secret",
            "private_key",
            "privateKey",
            "x-csrf-token",
            "auth",
            "x-auth",
            "otp",
            "card.cvv",
        ] {
            assert!(m.is_match(yes), "{yes}");
        }
        for no in [
            "url.path",
            "http.route",
            "http.request.method",
            "server.address",
            "user_agent.original",
            "db.query.text",
            "author",
            "keyboard",
            "monkey",
            "compass",
            "passenger.name",
            "spinner",
        ] {
            assert!(!m.is_match(no), "{no}");
        }
    }

    #[test]
    fn keys_are_words_compared_after_unicode_normalisation() {
        let m = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        for yes in [
            "ｐａｓｓｗｏｒｄ",
            "pass\u{200B}word",
            "pass\u{00AD}code",
            "\u{FEFF}token",
            "refresh_tokens",
            "token_id",
        ] {
            assert!(m.is_match(yes), "{yes:?}");
        }
        for no in [
            "tokens_used",
            "token_count",
            "password_length",
            "session.count",
            "key_size",
            "api_key_type",
        ] {
            assert!(!m.is_match(no), "{no:?}");
        }
    }

    #[test]
    fn long_and_multibyte_names_are_matched_without_panicking() {
        let m = KeyMatcher::new(DEFAULT_REDACT_KEYS).unwrap();
        assert!(m.is_match(&format!("{}password", "é".repeat(200))));
        assert!(!m.is_match(&"é".repeat(200)));
        assert!(KeyMatcher::new(&["*", "**", "*é*"]).unwrap().is_match("x"));
    }
}
