//! The YAML of a configuration file as the data model says: YAML 1.2 core schema, environment variables substituted
//! in scalar values only (never in keys, never recursively, never into structure), and node types resolved after
//! substitution. The result is a JSON value (what the JSON schema validates) and, for every node, where it was.

use super::Spot;
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nodes a file may expand to (aliases included): a file that expands further is refused, not a way to make
/// every service that reads it allocate without bound.
const MAX_NODES: usize = 100_000;
/// How deep sequences and mappings may nest.
const MAX_DEPTH: usize = 64;
/// Bytes a file may expand to: scalars, keys and the paths of its nodes, aliases included. A file under the size
/// limit that expands past this (a long scalar aliased many times, a long key over many nodes) is refused.
const MAX_BYTES: usize = 32 << 20;

/// A parsed file: its value and where each node came from, by JSON pointer (`/tracer_provider/processors/0`).
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) value: Value,
    pub(crate) spots: BTreeMap<String, Spot>,
}

/// Why a file could not be parsed: the message and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YamlError {
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) message: String,
}

/// Parses `text`, looking variables up with `var` (a variable that is unset gives `None`).
pub(crate) fn parse(text: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, YamlError> {
    // The parser's events, read one at a time (its own loader recurses once per nesting level, without a bound).
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    let mut depth = 0usize;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| YamlError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(error(
                        &mark,
                        format!("nodes nest deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        let end = matches!(ev, Event::StreamEnd);
        events.push((ev, mark));
        if end {
            break;
        }
    }
    let mut b = Builder {
        events,
        at: 0,
        var,
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        parsed: Parsed::default(),
    };
    let mut documents = 0;
    let mut value = Value::Null;
    while let Some((ev, mark)) = b.next() {
        match ev {
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(error(
                        &mark,
                        "a configuration file holds one YAML document; this is the second",
                    ));
                }
                if !matches!(b.peek(), Some(Event::DocumentEnd)) {
                    value = b.node(String::new(), 0)?;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            _ => return Err(error(&mark, "unexpected YAML event")),
        }
    }
    b.parsed.value = value;
    Ok(b.parsed)
}

fn error(mark: &Marker, message: impl Into<String>) -> YamlError {
    YamlError {
        line: mark.line(),
        col: mark.col() + 1,
        message: message.into(),
    }
}

struct Builder<'a> {
    events: Vec<(Event, Marker)>,
    at: usize,
    var: &'a dyn Fn(&str) -> Option<String>,
    anchors: HashMap<usize, Value>,
    nodes: usize,
    bytes: usize,
    parsed: Parsed,
}

impl Builder<'_> {
    fn next(&mut self) -> Option<(Event, Marker)> {
        let e = self.events.get_mut(self.at)?;
        self.at += 1;
        Some((std::mem::replace(&mut e.0, Event::Nothing), e.1))
    }

    fn peek(&self) -> Option<&Event> {
        self.events.get(self.at).map(|e| &e.0)
    }

    /// Counts `n` nodes of `bytes` bytes against the limits.
    fn count(&mut self, mark: &Marker, n: usize, bytes: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        self.bytes = self.bytes.saturating_add(bytes);
        let over = if self.nodes > MAX_NODES {
            format!("{MAX_NODES} nodes")
        } else if self.bytes > MAX_BYTES {
            format!("{} MiB", MAX_BYTES >> 20)
        } else {
            return Ok(());
        };
        Err(error(
            mark,
            format!("the file expands to more than {over} (aliases included); refusing it"),
        ))
    }

    /// The node that starts at the next event, at `pointer`.
    fn node(&mut self, pointer: String, depth: usize) -> Result<Value, YamlError> {
        let Some((ev, mark)) = self.next() else {
            return Err(YamlError {
                line: 0,
                col: 0,
                message: "the file ends inside a node".into(),
            });
        };
        self.count(&mark, 1, pointer.len())?;
        if depth > MAX_DEPTH {
            return Err(error(
                &mark,
                format!("nodes nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        let mut spot = Spot {
            line: mark.line(),
            col: mark.col() + 1,
            vars: Vec::new(),
        };
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                // The core schema's tags: `!!str` (and the non-specific `!`) make a string, the others check the
                // type the text resolves to.
                let (forced_string, want) = match tag {
                    None => (false, None),
                    Some(t) if format!("{}{}", t.handle, t.suffix) == "!" => (true, None),
                    Some(t) if t.handle == "tag:yaml.org,2002:" => match t.suffix.as_str() {
                        "str" => (true, None),
                        k @ ("int" | "float" | "bool" | "null") => (false, Some(k.to_string())),
                        _ => return Err(unsupported_tag(&mark, &t.handle, &t.suffix)),
                    },
                    Some(t) => return Err(unsupported_tag(&mark, &t.handle, &t.suffix)),
                };
                let (text, vars) = substitute(&text, self.var).map_err(|m| error(&mark, m))?;
                self.count(&mark, 0, text.len())?;
                spot.vars = vars;
                let value = match want {
                    Some(kind) => {
                        let v = resolve(&text);
                        let ok = match kind.as_str() {
                            "int" => v.is_i64() || v.is_u64(),
                            "float" => v.is_number(),
                            "bool" => v.is_boolean(),
                            _ => v.is_null(),
                        };
                        if !ok {
                            return Err(error(
                                &mark,
                                format!("!!{kind} on a value that is not one"),
                            ));
                        }
                        v
                    }
                    None if style == TScalarStyle::Plain && !forced_string => resolve(&text),
                    None => Value::String(text),
                };
                (value, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(&mark, tag.as_ref(), "seq")?;
                let mut items = Vec::new();
                while !matches!(self.peek(), Some(Event::SequenceEnd) | None) {
                    let p = format!("{pointer}/{}", items.len());
                    items.push(self.node(p, depth + 1)?);
                }
                self.next();
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(&mark, tag.as_ref(), "map")?;
                let mut map = Map::new();
                while !matches!(self.peek(), Some(Event::MappingEnd) | None) {
                    let (key, key_mark) = match self.next() {
                        Some((Event::Scalar(k, ..), m)) => (k, m),
                        Some((_, m)) => {
                            return Err(error(&m, "a mapping key must be a plain string"));
                        }
                        None => break,
                    };
                    if map.contains_key(&key) {
                        return Err(error(
                            &key_mark,
                            format!("the key {key:?} appears twice in this mapping"),
                        ));
                    }
                    let p = format!("{pointer}/{}", escape(&key));
                    let value = self.node(p.clone(), depth + 1)?;
                    // A key's line is where its value's problems are best shown.
                    if let Some(s) = self.parsed.spots.get_mut(&p) {
                        s.line = key_mark.line();
                        s.col = key_mark.col() + 1;
                    }
                    map.insert(key, value);
                }
                self.next();
                (Value::Object(map), anchor)
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| error(&mark, "an alias to an unknown anchor"))?;
                // An alias nests its anchor's whole depth here: the limit holds for the expanded file too.
                let (nodes, bytes, nesting) = weight(&value);
                if depth + nesting > MAX_DEPTH {
                    return Err(error(
                        &mark,
                        format!("nodes nest deeper than {MAX_DEPTH} levels (aliases expanded)"),
                    ));
                }
                self.count(&mark, nodes, bytes)?;
                (value, 0)
            }
            _ => return Err(error(&mark, "unexpected YAML event")),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        self.parsed.spots.insert(pointer, spot);
        Ok(value)
    }
}

fn unsupported_tag(mark: &Marker, handle: &str, suffix: &str) -> YamlError {
    error(
        mark,
        format!(
            "the tag {handle}{suffix} is not one of the YAML core schema's (!!str, !!int, !!float, !!bool, !!null)"
        ),
    )
}

/// A collection's tag: none, or the core schema's own for its kind.
fn collection_tag(
    mark: &Marker,
    tag: Option<&yaml_rust2::parser::Tag>,
    kind: &str,
) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == "tag:yaml.org,2002:" && t.suffix == kind => Ok(()),
        Some(t) => Err(error(
            mark,
            format!(
                "the tag {}{} is not supported on a collection here",
                t.handle, t.suffix
            ),
        )),
    }
}

/// How many nodes a value holds, how many bytes of text, and how deep its collections nest (bounded: values are
/// built within [`MAX_DEPTH`]).
fn weight(v: &Value) -> (usize, usize, usize) {
    let add = |(n, b, d): (usize, usize, usize), (m, c, e): (usize, usize, usize)| {
        (n + m, b + c, d.max(e))
    };
    let (nodes, bytes, depth) = match v {
        Value::Array(a) => a.iter().map(weight).fold((1, 0, 0), add),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| add(weight(v), (0, k.len(), 0)))
            .fold((1, 0, 0), add),
        Value::String(s) => return (1, s.len(), 0),
        _ => return (1, 8, 0),
    };
    (nodes, bytes, depth + 1)
}

/// A key as a JSON pointer token.
pub(crate) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A plain scalar's value under the YAML 1.2 core schema.
pub(crate) fn resolve(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = text.strip_prefix("0x").filter(|s| digits(s, 16))
        && let Ok(n) = u64::from_str_radix(hex, 16)
    {
        return Value::Number(n.into());
    }
    if let Some(oct) = text.strip_prefix("0o").filter(|s| digits(s, 8))
        && let Ok(n) = u64::from_str_radix(oct, 8)
    {
        return Value::Number(n.into());
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned, 10) {
        if let Ok(n) = text.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Value::Number(n.into());
        }
    }
    if is_float(unsigned)
        && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, sign already removed.
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && all_digits(frac),
        Some((int, frac)) => all_digits(int) && all_digits(frac),
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && all_digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Substitutes the environment references of one scalar, as `specification/configuration/data-model.md` says: `$$`
/// is an escape for `$` (never part of a reference), `${NAME}` / `${env:NAME}` / `${NAME:-default}` are replaced
/// (the default when the variable is unset or empty; nothing when it is unset without one), a substituted value is
/// never substituted again, and any other `${…}` fails the whole parse. Returns the text and the variables read.
pub(crate) fn substitute(
    input: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(input.len());
    let mut vars = Vec::new();
    let mut rest = input;
    loop {
        match rest.find("$$") {
            Some(i) => {
                references(&rest[..i], var, &mut out, &mut vars)?;
                out.push('$');
                rest = &rest[i + 2..];
            }
            None => {
                references(rest, var, &mut out, &mut vars)?;
                return Ok((out, vars));
            }
        }
    }
}

/// Substitutes the references of a stretch without escapes.
fn references(
    mut s: &str,
    var: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    vars: &mut Vec<String>,
) -> Result<(), String> {
    while let Some(start) = s.find("${") {
        out.push_str(&s[..start]);
        let after = &s[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&s[start..]);
            return Ok(());
        };
        let body = &after[..end];
        // Only printable ASCII and blanks can form a reference, valid or not: anything else is left as written.
        if !body
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic())
        {
            out.push_str("${");
            s = after;
            continue;
        }
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let name = name.strip_prefix("env:").unwrap_or(name);
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!(
                "${{{}}} is not a valid substitution reference (use ${{NAME}}, ${{env:NAME}} or ${{NAME:-default}}; \
                 NAME is letters, digits and _, not starting with a digit; write $$ for a literal $)",
                crate::text::printable(body)
            ));
        }
        match (var(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => out.push_str(&var(name).unwrap_or_default()),
        }
        vars.push(name.to_string());
        s = &after[end + 1..];
    }
    out.push_str(s);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment of the specification's table.
    fn table_env(name: &str) -> Option<String> {
        Some(
            match name {
                "STRING_VALUE" => "value",
                "BOOL_VALUE" => "true",
                "INT_VALUE" => "1",
                "FLOAT_VALUE" => "1.1",
                "HEX_VALUE" => "0xdeadbeef",
                "INVALID_MAP_VALUE" => "value\nkey:value",
                "DO_NOT_REPLACE_ME" => "Never use this value",
                "REPLACE_ME" => "${DO_NOT_REPLACE_ME}",
                "VALUE_WITH_ESCAPE" => "value$$",
                _ => return None,
            }
            .to_string(),
        )
    }

    fn key(yaml: &str) -> Result<Value, YamlError> {
        parse(yaml, &table_env).map(|p| p.value["key"].clone())
    }

    /// Every row of the table in `specification/configuration/data-model.md` ("Environment variable substitution").
    #[test]
    fn every_row_of_the_specifications_substitution_table() {
        use serde_json::json;
        let rows: &[(&str, Value)] = &[
            ("key: ${STRING_VALUE}", json!("value")),
            ("key: ${BOOL_VALUE}", json!(true)),
            ("key: ${INT_VALUE}", json!(1)),
            ("key: ${FLOAT_VALUE}", json!(1.1)),
            ("key: ${HEX_VALUE}", json!(3735928559u64)),
            ("key: \"${STRING_VALUE}\"", json!("value")),
            ("key: \"${BOOL_VALUE}\"", json!("true")),
            ("key: \"${INT_VALUE}\"", json!("1")),
            ("key: \"${FLOAT_VALUE}\"", json!("1.1")),
            ("key: \"${HEX_VALUE}\"", json!("0xdeadbeef")),
            ("key: ${env:STRING_VALUE}", json!("value")),
            ("key: ${INVALID_MAP_VALUE}", json!("value\nkey:value")),
            (
                "key: foo ${STRING_VALUE} ${FLOAT_VALUE}",
                json!("foo value 1.1"),
            ),
            ("key: ${UNDEFINED_KEY}", Value::Null),
            ("key: ${UNDEFINED_KEY:-fallback}", json!("fallback")),
            ("key: ${REPLACE_ME}", json!("${DO_NOT_REPLACE_ME}")),
            (
                "key: ${UNDEFINED_KEY:-${STRING_VALUE}}",
                json!("${STRING_VALUE}"),
            ),
            ("key: $${STRING_VALUE}", json!("${STRING_VALUE}")),
            ("key: $$${STRING_VALUE}", json!("$value")),
            ("key: $$$${STRING_VALUE}", json!("$${STRING_VALUE}")),
            (
                "key: $${STRING_VALUE:-fallback}",
                json!("${STRING_VALUE:-fallback}"),
            ),
            (
                "key: $${STRING_VALUE:-${STRING_VALUE}}",
                json!("${STRING_VALUE:-value}"),
            ),
            (
                "key: ${UNDEFINED_KEY:-$${UNDEFINED_KEY}}",
                json!("${UNDEFINED_KEY:-${UNDEFINED_KEY}}"),
            ),
            ("key: ${VALUE_WITH_ESCAPE}", json!("value$$")),
            ("key: a $$ b", json!("a $ b")),
            ("key: a $ b", json!("a $ b")),
        ];
        for (yaml, want) in rows {
            assert_eq!(&key(yaml).unwrap(), want, "{yaml}");
        }
        // Keys are never substituted.
        let p = parse("${STRING_VALUE}: value", &table_env).unwrap();
        assert_eq!(p.value["${STRING_VALUE}"], json!("value"));
        // An invalid reference fails the whole parse, with where it is.
        let e = parse("a: 1\nkey: ${STRING_VALUE:?error}\n", &table_env).unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("STRING_VALUE:?error"), "{e:?}");
        for bad in ["${1API_KEY}", "${API_$KEY}", "${}", "x ${ A}"] {
            assert!(key(&format!("key: {bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn core_schema_types_and_where_each_node_is() {
        use serde_json::json;
        let p = parse(
            "a:\n  - 0o17\n  - -12\n  - +3.5e2\n  - .5\n  - ~\n  - 'true'\n  - !!str 7\n  - 1_000\n  - 99999999999999999999\nb: {c: x}\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            p.value,
            json!({"a": [15, -12, 350.0, 0.5, null, "true", "7", "1_000", 1e20], "b": {"c": "x"}})
        );
        assert_eq!((p.spots["/a/2"].line, p.spots["/a/2"].col), (4, 5));
        assert_eq!(p.spots["/b/c"].line, 11);
        // Text that cannot form a reference (not printable ASCII) is left as written; the core schema's tags.
        let p = parse(
            "a: ${X:-café}\nb: ! 7\nc: !!int 7\nd: !!float 7\ne: !!bool true\nf: !!null ~\ng: !!map {h: !!seq [1]}\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            p.value,
            json!({"a": "${X:-café}", "b": "7", "c": 7, "d": 7, "e": true, "f": null, "g": {"h": [1]}})
        );
        for bad in ["a: !!int x", "a: !foo {}", "a: !!bool 1", "a: !custom 1"] {
            assert!(parse(bad, &|_| None).is_err(), "{bad}");
        }
        let vars = parse("k: ${A}-${env:B}", &|_| None).unwrap();
        assert_eq!(vars.spots["/k"].vars, ["A", "B"]);
    }

    #[test]
    fn hostile_files_are_errors_not_allocations_or_structure() {
        // A billion laughs.
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            yaml.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = parse(&yaml, &|_| None).unwrap_err();
        assert!(e.message.contains("more than"), "{e:?}");
        let deep = format!("k: {}{}", "[".repeat(200), "]".repeat(200));
        assert!(
            parse(&deep, &|_| None)
                .unwrap_err()
                .message
                .contains("deeper")
        );
        assert!(
            parse("a: 1\na: 2\n", &|_| None)
                .unwrap_err()
                .message
                .contains("twice")
        );
        assert!(parse("a: 1\n---\nb: 2\n", &|_| None).is_err());
        assert!(parse("a: !!binary aGk=\n", &|_| None).is_err());
        // Block nesting deeper than the limit is an error, not a stack overflow.
        let blocks = format!("file_format: \"1.1\"\nx:\n{}1\n", "- ".repeat(50_000));
        let e = parse(&blocks, &|_| None).unwrap_err();
        assert!(e.message.contains("deeper"), "{e:?}");
        // Anchors that alias each other nest deeper than any one of them is written.
        let (open, close) = ("[".repeat(30), "]".repeat(30));
        let mut chain = format!("a0: &a0 {open}x{close}\n");
        for i in 1..5 {
            chain.push_str(&format!("a{i}: &a{i} {open} *a{} {close}\n", i - 1));
        }
        let e = parse(&chain, &|_| None).unwrap_err();
        assert!(e.message.contains("aliases expanded"), "{e:?}");
        // A long scalar aliased many times, or a long key over many nodes: bytes are counted, not only nodes.
        let big = format!(
            "s: &s {}\nl: [{}]\n",
            "x".repeat(500_000),
            vec!["*s"; 100].join(", ")
        );
        assert!(parse(&big, &|_| None).unwrap_err().message.contains("MiB"));
        let key = format!(
            "? {}\n: [{}]\n",
            "k".repeat(600_000),
            vec!["x"; 100].join(", ")
        );
        assert!(parse(&key, &|_| None).unwrap_err().message.contains("MiB"));
        // A value that looks like YAML stays one string.
        let p = parse("k: ${V}\n", &|_| Some("[1, {a: b}]".to_string())).unwrap();
        assert_eq!(p.value["k"], Value::String("[1, {a: b}]".into()));
    }
}
