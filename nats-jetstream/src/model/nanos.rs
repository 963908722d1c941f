//! Durations on the wire: integer nanoseconds (Go's `time.Duration`, an `i64`).
//!
//! Reading is lenient: `null` is zero (or `None`), a negative value is zero (or `None`: the server writes `-1`
//! for "never", as in a source's `active`). Writing saturates at `i64::MAX` nanoseconds (about 292 years).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};

/// Nanoseconds as Go writes them, saturated to `i64`.
pub(crate) fn to_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A duration from signed nanoseconds; `None` when negative.
pub(crate) fn from_nanos(n: i64) -> Option<Duration> {
    u64::try_from(n).ok().map(Duration::from_nanos)
}

/// Reads an integer (signed or not) or `null` as optional nanoseconds.
struct NanosVisitor;

impl<'de> Visitor<'de> for NanosVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration in integer nanoseconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(from_nanos(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_nanos(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Not what Go writes, but `1e9` is a plausible hand-written value; the cast saturates.
        Ok((v >= 0.0).then(|| Duration::from_nanos(v as u64)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(NanosVisitor)
    }
}

/// True for a zero duration (the "unset" value of most duration fields).
pub(crate) fn is_zero(d: &Duration) -> bool {
    d.is_zero()
}

/// Serde for a `Duration` field: absent, `null` or negative read as zero.
pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(to_nanos(*d))
}

/// See [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(d.deserialize_option(NanosVisitor)?.unwrap_or_default())
}

/// Serde for an `Option<Duration>` field: `null` and negative values read as `None`.
pub(crate) mod optional {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_i64(to_nanos(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        d.deserialize_option(NanosVisitor)
    }
}

/// Serde for a `Vec<Duration>` field (`backoff`): `null` reads as empty, negative entries as zero.
pub(crate) mod list {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for d in list {
            seq.serialize_element(&to_nanos(*d))?;
        }
        seq.end()
    }

    struct ListVisitor;

    /// One element, read through [`NanosVisitor`].
    struct Element(Duration);

    impl<'de> serde::Deserialize<'de> for Element {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::deserialize(d).map(Element)
        }
    }

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of durations in integer nanoseconds")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(Element(d)) = seq.next_element()? {
                out.push(d);
            }
            Ok(out)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(ListVisitor)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        d.deserialize_option(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Probe {
        #[serde(with = "super")]
        d: Duration,
        #[serde(with = "super::optional", skip_serializing_if = "Option::is_none")]
        o: Option<Duration>,
        #[serde(with = "super::list")]
        l: Vec<Duration>,
    }

    fn read(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_leniently() {
        assert_eq!(read("{}"), Probe::default());
        assert_eq!(read(r#"{"d":null,"o":null,"l":null}"#), Probe::default());
        assert_eq!(read(r#"{"d":-1,"o":-1,"l":[-5]}"#), Probe { l: vec![Duration::ZERO], ..Probe::default() });
        let p = read(r#"{"d":30000000000,"o":5,"l":[1000000000,2000000000],"extra":1}"#);
        assert_eq!(p.d, Duration::from_secs(30));
        assert_eq!(p.o, Some(Duration::from_nanos(5)));
        assert_eq!(p.l, [Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(read(r#"{"d":1e9}"#).d, Duration::from_secs(1));
        assert!(serde_json::from_str::<Probe>(r#"{"d":"5s"}"#).is_err());
    }

    #[test]
    fn writes_integer_nanos_saturating() {
        let p = Probe { d: Duration::from_millis(1500), o: Some(Duration::MAX), l: vec![Duration::from_micros(1)] };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"d":1500000000,"o":9223372036854775807,"l":[1000]}"#);
        let back = read(&serde_json::to_string(&p).unwrap());
        assert_eq!((back.d, back.l), (p.d, p.l));
        assert_eq!(back.o, Some(Duration::from_nanos(i64::MAX as u64)));
        assert!(is_zero(&Duration::ZERO) && !is_zero(&Duration::from_nanos(1)));
    }
}
