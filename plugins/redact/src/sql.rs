//! SQL literal stripping that knows the dialect the span names (`db.system.name`): strings, numbers, hex and bit
//! literals become `?`; comments are dropped; identifiers, keywords and placeholders stay. What it cannot parse
//! (an unterminated string, quote or comment, or a statement that reads differently depending on whether the
//! server treats `\` as an escape) is redacted whole rather than guessed at.

/// The SQL dialect, from `db.system.name` (or the older `db.system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL and MariaDB: `"…"` is a string, `\` escapes (unless `NO_BACKSLASH_ESCAPES`), `#` comments.
    MySql,
    /// PostgreSQL: `"…"` is an identifier, `E'…'` escapes with `\`, `$tag$…$tag$` strings, nested `/* */`.
    Postgres,
    /// SQLite: `"…"`, `` `…` `` and `[…]` are identifiers, `''` is the only escape.
    Sqlite,
    /// Anything else: every quoting style read as a string, `#` a comment, both escape conventions tried.
    Other,
}

impl Dialect {
    /// The dialect of a `db.system.name` value.
    pub fn of(system: Option<&str>) -> Self {
        let Some(system) = system else {
            return Dialect::Other;
        };
        let is = |names: &[&str]| names.iter().any(|n| system.eq_ignore_ascii_case(n));
        if is(&["mysql", "mariadb", "tidb"]) {
            Dialect::MySql
        } else if is(&["postgresql", "postgres", "cockroachdb", "redshift"]) {
            Dialect::Postgres
        } else if is(&["sqlite"]) {
            Dialect::Sqlite
        } else {
            Dialect::Other
        }
    }
}

/// What became of a statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Stripped {
    /// No literal and no comment: keep it as it is.
    Clean,
    /// The statement with literals replaced.
    Changed(String),
    /// Not parseable (or ambiguous): redact the whole statement.
    Unparseable,
}

impl Stripped {
    /// The value an attribute holding the statement gets: `None` when it stays as it is (stripped SQL has no
    /// literal and no comment left; its identifiers are not scanned as text), `[REDACTED]` when unparseable.
    pub fn replacement(self) -> Option<String> {
        match self {
            Stripped::Clean => None,
            Stripped::Changed(out) => Some(out),
            Stripped::Unparseable => Some(ndotel_api::REDACTED.to_string()),
        }
    }
}

/// Strips the literals of `sql` read in `dialect`.
pub fn strip(sql: &str, dialect: Dialect) -> Stripped {
    let b = sql.as_bytes();
    // Fast path: nothing that starts a literal or a comment.
    if !b.iter().any(|&c| OPENS[c as usize]) {
        return Stripped::Clean;
    }
    match dialect {
        // MySQL servers may or may not treat `\` as an escape: both readings must agree.
        Dialect::MySql | Dialect::Other => {
            let with = Scanner::new(sql, dialect, true).run();
            if with == Scanner::new(sql, dialect, false).run() {
                with
            } else {
                Stripped::Unparseable
            }
        }
        Dialect::Postgres | Dialect::Sqlite => Scanner::new(sql, dialect, false).run(),
    }
}

/// What became of the statements seen first, each in a slot of its own picked by its hash and filled once: services
/// send the same parameterized statements over and over, and a statement found here is not scanned again.
///
/// A slot holds the statement's dialect, length and two independent 64-bit hashes (seeded per process), never its
/// text: a statement may hold the very literals redaction removes, and they are not kept. What a slot keeps of the
/// answer is stripped SQL, which holds none. A hit needs all four to agree; the answer is [`strip`]'s on the statement
/// that filled the slot, so two statements would have to collide in 128 seeded bits to get each other's answer, and
/// even then the answer is stripped SQL, never the literals of either. Which statements took the slots (an
/// attacker's, say) changes only how fast an answer comes; long statements are not kept, so memory stays bounded.
pub(crate) struct Memo {
    slots: Box<[MemoSlot]>,
    first: foldhash::fast::RandomState,
    second: foldhash::fast::RandomState,
}

/// A statement's dialect, length and hashes, and what it becomes (`None`: clean).
type MemoSlot = std::sync::OnceLock<(Dialect, usize, [u64; 2], Option<Box<str>>)>;

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("Memo").field("held", &held).finish()
    }
}

/// How many statements the memo holds.
const MEMO_SLOTS: usize = 64;

/// The longest statement the memo keeps, in bytes.
const MEMO_LONGEST: usize = 1024;

impl Memo {
    pub(crate) fn new() -> Self {
        Memo {
            slots: (0..MEMO_SLOTS).map(|_| MemoSlot::new()).collect(),
            first: foldhash::fast::RandomState::default(),
            second: foldhash::fast::RandomState::default(),
        }
    }

    /// `sql` in `dialect` with its literals stripped (`None`: nothing to strip; `Some(REDACTED)`: unparseable).
    pub(crate) fn strip(&self, sql: &str, dialect: Dialect) -> Option<String> {
        if sql.len() > MEMO_LONGEST {
            return strip(sql, dialect).replacement();
        }
        use std::hash::BuildHasher as _;
        let hashes = [self.first.hash_one(sql), self.second.hash_one(sql)];
        let slot = &self.slots[hashes[0] as usize % MEMO_SLOTS];
        let taken = match slot.get() {
            Some((d, len, h, out)) if *d == dialect && *len == sql.len() && *h == hashes => {
                return out.as_deref().map(str::to_string);
            }
            taken => taken.is_some(),
        };
        let out = strip(sql, dialect).replacement();
        if !taken {
            let _ = slot.set((dialect, sql.len(), hashes, out.as_deref().map(Box::from)));
        }
        out
    }
}

struct Scanner<'a> {
    sql: &'a str,
    b: &'a [u8],
    dialect: Dialect,
    backslash: bool,
    out: String,
    copied: usize,
    changed: bool,
}

impl<'a> Scanner<'a> {
    fn new(sql: &'a str, dialect: Dialect, backslash: bool) -> Self {
        Scanner {
            sql,
            b: sql.as_bytes(),
            dialect,
            backslash,
            out: String::with_capacity(sql.len()),
            copied: 0,
            changed: false,
        }
    }

    /// Replaces `start..end` by `with`.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        self.out.push_str(&self.sql[self.copied..start]);
        self.out.push_str(with);
        self.copied = end;
        self.changed = true;
    }

    fn run(mut self) -> Stripped {
        let b = self.b;
        let strings_in_double = matches!(self.dialect, Dialect::MySql | Dialect::Other);
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if PLAIN[c as usize] {
                i += 1;
                continue;
            }
            let next = b.get(i + 1).copied();
            match c {
                b'\'' => {
                    let start = self.literal_prefix(i);
                    // PostgreSQL `E'…'` strings escape with `\`; standard strings do not.
                    let escapes = self.backslash
                        || (self.dialect == Dialect::Postgres
                            && start < i
                            && b[start..i].eq_ignore_ascii_case(b"e"));
                    let Some(end) = self.quoted(i, b'\'', escapes) else {
                        return Stripped::Unparseable;
                    };
                    self.replace(start, end, "?");
                    i = end;
                }
                b'"' if strings_in_double => {
                    let Some(end) = self.quoted(i, b'"', self.backslash) else {
                        return Stripped::Unparseable;
                    };
                    self.replace(i, end, "?");
                    i = end;
                }
                b'"' | b'`' => {
                    // A quoted identifier: kept.
                    let Some(end) = self.quoted(i, c, false) else {
                        return Stripped::Unparseable;
                    };
                    i = end;
                }
                b'[' if self.dialect == Dialect::Sqlite => {
                    let Some(close) = b[i..].iter().position(|&c| c == b']') else {
                        return Stripped::Unparseable;
                    };
                    i += close + 1;
                }
                b'-' if next == Some(b'-') => {
                    let end = line_end(b, i);
                    self.replace(i, end, "");
                    i = end;
                }
                b'#' if matches!(self.dialect, Dialect::MySql | Dialect::Other) => {
                    let end = line_end(b, i);
                    self.replace(i, end, "");
                    i = end;
                }
                b'/' if next == Some(b'*') => {
                    let Some(end) = self.block_comment(i) else {
                        return Stripped::Unparseable;
                    };
                    self.replace(i, end, " ");
                    i = end;
                }
                b'$' => match self.dollar_tag(i) {
                    Some(tag_end) if self.dialect != Dialect::MySql => {
                        let tag = &b[i..tag_end];
                        let Some(body) = find(&b[tag_end..], tag) else {
                            return Stripped::Unparseable;
                        };
                        let end = tag_end + body + tag.len();
                        self.replace(i, end, "?");
                        i = end;
                    }
                    _ => {
                        // A placeholder (`$1`) or part of an identifier: kept.
                        i += 1;
                        while i < b.len() && is_ident(b[i]) {
                            i += 1;
                        }
                    }
                },
                b':' | b'@' | b'?' => {
                    // Placeholders and variables (`:name`, `@var`, `?`): kept.
                    i += 1;
                    while i < b.len() && is_ident(b[i]) {
                        i += 1;
                    }
                }
                b'0'..=b'9' => {
                    let end = number_end(b, i);
                    self.replace(i, end, "?");
                    i = end;
                }
                b'.' if next.is_some_and(|n| n.is_ascii_digit())
                    && (i == 0 || !is_ident(b[i - 1])) =>
                {
                    let end = number_end(b, i + 1);
                    self.replace(i, end, "?");
                    i = end;
                }
                c if is_ident(c) => {
                    while i < b.len() && IDENT[b[i] as usize] {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'$' {
                        // `a$b` is one identifier in PostgreSQL and MySQL.
                        while i < b.len() && (is_ident(b[i]) || b[i] == b'$') {
                            i += 1;
                        }
                    }
                }
                _ => i += 1,
            }
        }
        if !self.changed {
            return Stripped::Clean;
        }
        self.out.push_str(&self.sql[self.copied..]);
        Stripped::Changed(self.out)
    }

    /// Where a string literal starting at the quote `i` really starts: `x'…'`, `b'…'`, `n'…'`, `e'…'`, `u&'…'`
    /// and MySQL charset introducers (`_utf8mb4'…'`) belong to it.
    fn literal_prefix(&self, i: usize) -> usize {
        let b = self.b;
        let mut s = i;
        if s > self.copied && b[s - 1] == b'&' {
            s -= 1;
        }
        let mut w = s;
        while w > self.copied && is_ident(b[w - 1]) {
            w -= 1;
        }
        let word = &b[w..s];
        let known = [b"x".as_slice(), b"b", b"n", b"e", b"u"]
            .iter()
            .any(|p| word.eq_ignore_ascii_case(p))
            || (word.first() == Some(&b'_') && word.len() > 1);
        if known && (s == i || word.eq_ignore_ascii_case(b"u")) {
            w
        } else {
            i
        }
    }

    /// The end (past the closing quote) of the quoted run opening at `i`; a doubled quote is an escaped quote,
    /// and so is `\` + anything when `escapes`. `None` when it never closes.
    fn quoted(&self, i: usize, q: u8, escapes: bool) -> Option<usize> {
        let b = self.b;
        let mut j = i + 1;
        while j < b.len() {
            match b[j] {
                b'\\' if escapes => j += 2,
                c if c == q && b.get(j + 1) == Some(&q) => j += 2,
                c if c == q => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    }

    /// The end of the block comment at `i` (nested in PostgreSQL); `None` when it never closes.
    fn block_comment(&self, i: usize) -> Option<usize> {
        let b = self.b;
        let mut depth = 0usize;
        let mut j = i;
        while j + 1 < b.len() {
            if b[j] == b'/' && b[j + 1] == b'*' {
                depth = if self.dialect == Dialect::Postgres || depth == 0 {
                    depth + 1
                } else {
                    depth
                };
                j += 2;
            } else if b[j] == b'*' && b[j + 1] == b'/' {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            } else {
                j += 1;
            }
        }
        None
    }

    /// The end of a `$tag$` dollar-quote opener at `i` (the tag may be empty; it does not start with a digit).
    fn dollar_tag(&self, i: usize) -> Option<usize> {
        let b = self.b;
        // `a$$` continues an identifier; after a number (replaced by `?`) a `$` opens a quote, as after `?`.
        if i > 0 && is_ident(b[i - 1]) && !b[i - 1].is_ascii_digit() {
            return None;
        }
        let mut j = i + 1;
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        while j < b.len() && is_ident(b[j]) {
            j += 1;
        }
        (b.get(j) == Some(&b'$')).then_some(j + 1)
    }
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p)
}

/// The end of a number starting at `i`: digits, letters (`0x1F`, `1e5`, `0b101`), `_`, `.` and an exponent's sign.
fn number_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
        if matches!(b[i], b'e' | b'E') && matches!(b.get(i + 1), Some(b'+' | b'-')) {
            i += 1;
        }
        i += 1;
    }
    i.min(b.len())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// A table of the bytes `c` for which the expression holds: the scanner's loops test a byte with one load.
macro_rules! table {
    (|$c:ident| $pick:expr) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $c = i as u8;
            t[i] = $pick;
            i += 1;
        }
        t
    }};
}

/// Identifier bytes (`$` is not one: the scanner handles it on its own).
const IDENT: [bool; 256] = table!(|c| is_ident(c));

/// Bytes the scanner steps over in every dialect: none starts or may start a literal, comment, quoted name,
/// placeholder or identifier.
const PLAIN: [bool; 256] = table!(|c| {
    !is_ident(c)
        && !matches!(
            c,
            b'\'' | b'"' | b'`' | b'[' | b'-' | b'#' | b'/' | b'$' | b':' | b'@' | b'?' | b'.'
        )
});

/// Bytes without which a statement has no literal and no comment.
const OPENS: [bool; 256] =
    table!(|c| matches!(c, b'\'' | b'"' | b'$' | b'#' | b'-' | b'/' | b'0'..=b'9'));

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`strip`] itself answers, in the memo's terms.
    fn fresh(sql: &str, d: Dialect) -> Option<String> {
        strip(sql, d).replacement()
    }

    #[test]
    fn the_memo_answers_what_strip_answers_whoever_took_its_slots() {
        use std::hash::BuildHasher as _;
        let memo = Memo::new();
        let slot = |sql: &str| memo.first.hash_one(sql) as usize % MEMO_SLOTS;
        let held = |memo: &Memo| memo.slots.iter().filter(|s| s.get().is_some()).count();
        let first = "SELECT id FROM items WHERE deleted = 0";
        // A statement sharing the first one's slot: it is answered afresh each time.
        let neighbour = (0..)
            .map(|i| format!("SELECT 'x{i}' FROM t"))
            .find(|sql| slot(sql) == slot(first))
            .expect("a statement in the same slot");
        let long = format!("SELECT '{}' FROM t", "x".repeat(2 * MEMO_LONGEST));
        for _ in 0..2 {
            for (sql, d) in [
                (first, Dialect::Sqlite),
                (neighbour.as_str(), Dialect::Sqlite),
                ("SELECT 'unterminated", Dialect::Other),
                ("", Dialect::MySql),
                (long.as_str(), Dialect::Sqlite),
            ] {
                assert_eq!(memo.strip(sql, d), fresh(sql, d), "{sql} in {d:?}");
            }
        }
        assert!(
            memo.slots[slot(first)].get().is_some(),
            "the first statement is kept"
        );
        assert!(
            held(&memo) <= 3,
            "neither the neighbour nor the long one is kept"
        );
        // Nothing of a statement's literals is kept, nor shown.
        assert!(!format!("{memo:?}").contains("deleted"));
        let secret = "SELECT 1 FROM users WHERE password = 'hunter2'";
        assert_eq!(
            memo.strip(secret, Dialect::Sqlite),
            fresh(secret, Dialect::Sqlite)
        );
        assert!(!format!("{:?}", memo.slots).contains("hunter2"));
    }

    #[test]
    fn the_dialect_is_part_of_what_a_memo_slot_holds() {
        // A fresh memo: the statement's slot is free, so the first dialect's answer is kept.
        let memo = Memo::new();
        let quoted = "SELECT \"a\" FROM t WHERE b = 'c'";
        for d in [
            Dialect::MySql,
            Dialect::Sqlite,
            Dialect::Postgres,
            Dialect::MySql,
        ] {
            assert_eq!(memo.strip(quoted, d), fresh(quoted, d), "{d:?}");
        }
        assert_eq!(
            memo.strip(quoted, Dialect::Sqlite).as_deref(),
            Some("SELECT \"a\" FROM t WHERE b = ?")
        );
        assert_eq!(
            memo.strip(quoted, Dialect::MySql).as_deref(),
            Some("SELECT ? FROM t WHERE b = ?")
        );
    }

    fn s(sql: &str, d: Dialect) -> String {
        match strip(sql, d) {
            Stripped::Clean => sql.to_string(),
            Stripped::Changed(out) => out,
            Stripped::Unparseable => "<whole>".to_string(),
        }
    }

    #[test]
    fn literals_become_placeholders_in_every_dialect() {
        for d in [
            Dialect::MySql,
            Dialect::Postgres,
            Dialect::Sqlite,
            Dialect::Other,
        ] {
            assert_eq!(
                s(
                    "SELECT * FROM t1 WHERE name = 'O''Brien' AND age > 42 AND x = $1 AND y = -1.5e-3",
                    d
                ),
                "SELECT * FROM t1 WHERE name = ? AND age > ? AND x = $1 AND y = -?",
                "{d:?}"
            );
            assert_eq!(
                s("INSERT INTO items VALUES (?, ?, :n, @v)", d),
                "INSERT INTO items VALUES (?, ?, :n, @v)"
            );
            assert_eq!(
                s(
                    "a = X'0AFF' AND b = 0x1F AND c = b'101' AND d = N'x' AND e = .5",
                    d
                ),
                "a = ? AND b = ? AND c = ? AND d = ? AND e = ?"
            );
            assert_eq!(
                s(
                    "SELECT a -- password hunter2\nFROM t /* secret */ WHERE b = 1",
                    d
                ),
                "SELECT a \nFROM t   WHERE b = ?"
            );
            assert_eq!(s("a = 'unterminated", d), "<whole>");
            assert_eq!(s("a = 1 /* open", d), "<whole>");
            assert_eq!(s("SELECT t1.c2, é FROM t1", d), "SELECT t1.c2, é FROM t1");
        }
    }

    #[test]
    fn each_dialect_reads_its_own_quoting() {
        // MySQL: backslash escapes and double-quoted strings.
        assert_eq!(
            s(r#"x = "hunter2" AND y = `col 1`"#, Dialect::MySql),
            "x = ? AND y = `col 1`"
        );
        assert_eq!(
            s(r"x = 'it\'s' AND y = 1", Dialect::MySql),
            "<whole>",
            "ambiguous without the server's mode"
        );
        assert_eq!(s(r"x = '\'' secret'", Dialect::MySql), "<whole>");
        assert_eq!(s("x = 1 # hunter2", Dialect::MySql), "x = ? ");
        assert_eq!(s("x = _utf8mb4'secret'", Dialect::MySql), "x = ?");
        // PostgreSQL: identifiers in double quotes, E-strings, dollar quoting, nested comments.
        assert_eq!(
            s(r#"SELECT "col 2" FROM t WHERE a = 'x'"#, Dialect::Postgres),
            r#"SELECT "col 2" FROM t WHERE a = ?"#
        );
        assert_eq!(
            s(r"a = E'it\'s secret' AND b = 'c:\'", Dialect::Postgres),
            "a = ? AND b = ?"
        );
        assert_eq!(
            s(
                "a = $$hunter2 ' x$$ AND b = $tag$in $$ side$tag$",
                Dialect::Postgres
            ),
            "a = ? AND b = ?"
        );
        assert_eq!(s("a = $tag$never closed", Dialect::Postgres), "<whole>");
        assert_eq!(
            s("a /* x /* y */ secret */ = 1", Dialect::Postgres),
            "a   = ?"
        );
        assert_eq!(
            s("a = 1 # 2", Dialect::Postgres),
            "a = ? # ?",
            "`#` is an operator in PostgreSQL"
        );
        // SQLite: brackets and double quotes are identifiers.
        assert_eq!(
            s(r#"SELECT [a b], "c" FROM t WHERE d = 'e'"#, Dialect::Sqlite),
            r#"SELECT [a b], "c" FROM t WHERE d = ?"#
        );
        // Unknown systems: every quoting style is a string.
        assert_eq!(s(r#"x = "hunter2""#, Dialect::Other), "x = ?");
        assert_eq!(Dialect::of(Some("MariaDB")), Dialect::MySql);
        assert_eq!(Dialect::of(None), Dialect::Other);
    }
}
