//! Values: borrowed attribute values and views of them, owned attributes, and the small enums of the span model.
//!
//! The borrowed [`ValueRef`] is the one attribute value that crosses the boundary, in both directions. It is a
//! fixed-layout tagged record (a kind code, a scalar and a pointer with a length) rather than a Rust enum, so a
//! later API version can add a kind without changing its layout; code built for an older version sees a kind it
//! does not know as [`AnyValue::Unknown`].

use abi_stable::StableAbi;
use abi_stable::std_types::RStr;
use std::fmt;
use std::marker::PhantomData;

/// The kind code of a [`ValueRef`] (a field-less enum as an integer, so new kinds can be added).
#[doc(hidden)]
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueKind(pub u8);

impl ValueKind {
    pub const BOOL: Self = ValueKind(0);
    pub const I64: Self = ValueKind(1);
    pub const F64: Self = ValueKind(2);
    pub const STR: Self = ValueKind(3);
    pub const BOOL_ARRAY: Self = ValueKind(4);
    pub const I64_ARRAY: Self = ValueKind(5);
    pub const F64_ARRAY: Self = ValueKind(6);
    pub const STR_ARRAY: Self = ValueKind(7);
}

/// A borrowed attribute value: read it with [`ValueRef::get`] (or [`ValueRef::as_str`]); build one with `From`.
///
/// ```
/// use ndotel_api::{AnyValue, ValueRef};
/// assert_eq!(ValueRef::from("x").get(), AnyValue::Str("x"));
/// assert_eq!(ValueRef::from(7i64).get(), AnyValue::I64(7));
/// let tags = ["a".into(), "b".into()];
/// assert_eq!(ValueRef::from(&tags[..]).get(), AnyValue::StrArray(&tags));
/// ```
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct ValueRef<'a> {
    kind: ValueKind,
    scalar: u64,
    ptr: *const (),
    len: usize,
    _borrow: PhantomData<&'a ()>,
}

// SAFETY: a ValueRef is a shared borrow of immutable data of one of the `Sync` types it is built from.
unsafe impl Send for ValueRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for ValueRef<'_> {}

impl<'a> ValueRef<'a> {
    fn scalar(kind: ValueKind, scalar: u64) -> Self {
        ValueRef {
            kind,
            scalar,
            ptr: std::ptr::null(),
            len: 0,
            _borrow: PhantomData,
        }
    }

    fn slice<T>(kind: ValueKind, s: &'a [T]) -> Self {
        ValueRef {
            kind,
            scalar: 0,
            ptr: s.as_ptr().cast(),
            len: s.len(),
            _borrow: PhantomData,
        }
    }

    /// The value, as a Rust enum.
    pub fn get(&self) -> AnyValue<'a> {
        // SAFETY: every constructor pairs the kind code with a pointer and length of the matching element type,
        // borrowed for 'a; unknown codes (a newer API) are never dereferenced.
        unsafe {
            let (ptr, len) = (self.ptr, self.len);
            match self.kind {
                ValueKind::BOOL => AnyValue::Bool(self.scalar != 0),
                ValueKind::I64 => AnyValue::I64(self.scalar as i64),
                ValueKind::F64 => AnyValue::F64(f64::from_bits(self.scalar)),
                ValueKind::STR => {
                    let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
                    AnyValue::Str(std::str::from_utf8_unchecked(bytes))
                }
                ValueKind::BOOL_ARRAY => {
                    AnyValue::BoolArray(std::slice::from_raw_parts(ptr.cast(), len))
                }
                ValueKind::I64_ARRAY => {
                    AnyValue::I64Array(std::slice::from_raw_parts(ptr.cast(), len))
                }
                ValueKind::F64_ARRAY => {
                    AnyValue::F64Array(std::slice::from_raw_parts(ptr.cast(), len))
                }
                ValueKind::STR_ARRAY => {
                    AnyValue::StrArray(std::slice::from_raw_parts(ptr.cast(), len))
                }
                _ => AnyValue::Unknown,
            }
        }
    }

    /// The string, when this is a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self.get() {
            AnyValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    fn from(s: &'a str) -> Self {
        ValueRef::slice(ValueKind::STR, s.as_bytes())
    }
}
impl<'a> From<&'a String> for ValueRef<'a> {
    fn from(s: &'a String) -> Self {
        s.as_str().into()
    }
}
impl From<bool> for ValueRef<'_> {
    fn from(v: bool) -> Self {
        ValueRef::scalar(ValueKind::BOOL, v as u64)
    }
}
impl From<i64> for ValueRef<'_> {
    fn from(v: i64) -> Self {
        ValueRef::scalar(ValueKind::I64, v as u64)
    }
}
impl From<f64> for ValueRef<'_> {
    fn from(v: f64) -> Self {
        ValueRef::scalar(ValueKind::F64, v.to_bits())
    }
}
impl<'a> From<&'a [bool]> for ValueRef<'a> {
    fn from(v: &'a [bool]) -> Self {
        ValueRef::slice(ValueKind::BOOL_ARRAY, v)
    }
}
impl<'a> From<&'a [i64]> for ValueRef<'a> {
    fn from(v: &'a [i64]) -> Self {
        ValueRef::slice(ValueKind::I64_ARRAY, v)
    }
}
impl<'a> From<&'a [f64]> for ValueRef<'a> {
    fn from(v: &'a [f64]) -> Self {
        ValueRef::slice(ValueKind::F64_ARRAY, v)
    }
}
impl<'a> From<&'a [RStr<'a>]> for ValueRef<'a> {
    fn from(v: &'a [RStr<'a>]) -> Self {
        ValueRef::slice(ValueKind::STR_ARRAY, v)
    }
}
impl<'a> From<AnyValue<'a>> for ValueRef<'a> {
    fn from(v: AnyValue<'a>) -> Self {
        match v {
            AnyValue::Bool(v) => v.into(),
            AnyValue::I64(v) => v.into(),
            AnyValue::F64(v) => v.into(),
            AnyValue::Str(v) => v.into(),
            AnyValue::BoolArray(v) => v.into(),
            AnyValue::I64Array(v) => v.into(),
            AnyValue::F64Array(v) => v.into(),
            AnyValue::StrArray(v) => v.into(),
            AnyValue::Unknown => ValueRef::scalar(ValueKind(u8::MAX), 0),
        }
    }
}

impl PartialEq for ValueRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// A borrowed attribute value as a Rust enum: every attribute type of the OpenTelemetry specification.
///
/// Match it with a `_` arm: a later API version may add kinds, which code built for this one sees as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum AnyValue<'a> {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    Str(&'a str),
    /// An array of booleans.
    BoolArray(&'a [bool]),
    /// An array of integers.
    I64Array(&'a [i64]),
    /// An array of floats.
    F64Array(&'a [f64]),
    /// An array of strings (for example an `http.request.header.*` attribute).
    StrArray(&'a [RStr<'a>]),
    /// A kind added by a later API version than the one this code was built with.
    Unknown,
}

impl fmt::Display for AnyValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str("]")
        }
        match self {
            AnyValue::Bool(v) => write!(f, "{v}"),
            AnyValue::I64(v) => write!(f, "{v}"),
            AnyValue::F64(v) => write!(f, "{v}"),
            AnyValue::Str(v) => f.write_str(v),
            AnyValue::BoolArray(v) => list(f, v),
            AnyValue::I64Array(v) => list(f, v),
            AnyValue::F64Array(v) => list(f, v),
            AnyValue::StrArray(v) => list(f, v),
            AnyValue::Unknown => f.write_str("<unknown>"),
        }
    }
}

/// A borrowed attribute.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct KeyValueRef<'a> {
    /// The attribute key.
    pub key: RStr<'a>,
    /// The attribute value.
    pub value: ValueRef<'a>,
}

impl<'a> KeyValueRef<'a> {
    /// Builds a borrowed attribute.
    pub fn new(key: &'a str, value: impl Into<ValueRef<'a>>) -> Self {
        KeyValueRef {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Finds the value of `key` among borrowed attributes.
///
/// ```
/// use ndotel_api::{find_attribute, KeyValueRef};
/// let attrs = [KeyValueRef::new("url.path", "/health")];
/// assert_eq!(find_attribute(&attrs, "url.path").and_then(|v| v.as_str()), Some("/health"));
/// ```
pub fn find_attribute<'a>(attributes: &[KeyValueRef<'a>], key: &str) -> Option<ValueRef<'a>> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value)
}

/// An owned attribute value (what a distro returns as resource or start attributes).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    I64(i64),
    /// A 64-bit float.
    F64(f64),
    /// A string.
    Str(String),
    /// An array of booleans.
    BoolArray(Vec<bool>),
    /// An array of integers.
    I64Array(Vec<i64>),
    /// An array of floats.
    F64Array(Vec<f64>),
    /// An array of strings.
    StrArray(Vec<String>),
}

impl Value {
    /// Calls `f` with a borrowed view of this value (string arrays need a temporary list of borrowed strings).
    pub fn with_ref<R>(&self, f: impl FnOnce(ValueRef<'_>) -> R) -> R {
        match self {
            Value::Bool(v) => f((*v).into()),
            Value::I64(v) => f((*v).into()),
            Value::F64(v) => f((*v).into()),
            Value::Str(v) => f(v.as_str().into()),
            Value::BoolArray(v) => f(v.as_slice().into()),
            Value::I64Array(v) => f(v.as_slice().into()),
            Value::F64Array(v) => f(v.as_slice().into()),
            Value::StrArray(v) => {
                let items: Vec<RStr<'_>> = v.iter().map(|s| s.as_str().into()).collect();
                f(items.as_slice().into())
            }
        }
    }

    /// An owned copy of a borrowed value (`None` for a kind this API version does not know).
    pub fn from_ref(v: ValueRef<'_>) -> Option<Value> {
        Some(match v.get() {
            AnyValue::Bool(v) => Value::Bool(v),
            AnyValue::I64(v) => Value::I64(v),
            AnyValue::F64(v) => Value::F64(v),
            AnyValue::Str(v) => Value::Str(v.to_string()),
            AnyValue::BoolArray(v) => Value::BoolArray(v.to_vec()),
            AnyValue::I64Array(v) => Value::I64Array(v.to_vec()),
            AnyValue::F64Array(v) => Value::F64Array(v.to_vec()),
            AnyValue::StrArray(v) => Value::StrArray(v.iter().map(|s| s.to_string()).collect()),
            AnyValue::Unknown => return None,
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Self {
        Value::StrArray(v)
    }
}

/// An owned attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute key.
    pub key: String,
    /// The attribute value.
    pub value: Value,
}

impl KeyValue {
    /// Builds an attribute.
    ///
    /// ```
    /// let kv = ndotel_api::KeyValue::new("deployment.environment.name", "prod");
    /// assert_eq!(kv.key, "deployment.environment.name");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Declares a Rust enum for authors and its integer code for the boundary (unknown codes map to a default).
macro_rules! coded_enum {
    ($(#[$m:meta])* pub enum $name:ident default $default:ident { $($(#[$vm:meta])* $variant:ident = $code:expr,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }
        impl $name {
            /// The code that crosses the boundary.
            #[doc(hidden)]
            pub fn code(self) -> u8 {
                match self { $($name::$variant => $code,)+ }
            }
            /// The value of a code; `None` for a code this API version does not know.
            #[doc(hidden)]
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
            /// The value of a code, or the default for a code this API version does not know.
            #[doc(hidden)]
            pub fn from_code_or_default(code: u8) -> Self {
                Self::from_code(code).unwrap_or($name::$default)
            }
        }
    };
}

coded_enum! {
    /// The span kind, as in the OpenTelemetry specification.
    pub enum SpanKind default Internal {
        /// An internal operation.
        Internal = 0,
        /// The server side of a request.
        Server = 1,
        /// The client side of a request.
        Client = 2,
        /// A message producer.
        Producer = 3,
        /// A message consumer.
        Consumer = 4,
    }
}

coded_enum! {
    /// Where the parent of a span to be sampled is.
    pub enum ParentKind default None {
        /// The span is a root.
        None = 0,
        /// The parent span lives in this process.
        Local = 1,
        /// The parent span came from another process (e.g. `traceparent`).
        Remote = 2,
    }
}

coded_enum! {
    /// A sampling decision.
    ///
    /// The host applies no parent-based logic of its own: a sampler that returns `RecordAndSample` for a child whose
    /// parent was dropped creates an orphan. Return [`Decision::FollowParent`] for "whatever the parent decided"
    /// (a root then counts as sampled), or use [`SamplingParams::parent_decision`](crate::SamplingParams).
    pub enum Decision default Drop {
        /// Not recorded, not exported.
        Drop = 0,
        /// Recorded (processors see it) but not exported.
        RecordOnly = 1,
        /// Recorded and exported.
        RecordAndSample = 2,
        /// Sampled when the parent was sampled or there is no parent; dropped otherwise.
        FollowParent = 3,
    }
}

coded_enum! {
    /// The status code of a finished span.
    pub enum StatusCode default Unset {
        /// Not set.
        Unset = 0,
        /// Explicitly OK.
        Ok = 1,
        /// An error.
        Error = 2,
    }
}

coded_enum! {
    /// The aggregation temporality a metric exporter wants.
    pub enum Temporality default Cumulative {
        /// Totals since start.
        Cumulative = 0,
        /// Changes since the previous export.
        Delta = 1,
    }
}

/// The replacement the host writes for a redacted value.
pub const REDACTED: &str = "[REDACTED]";
