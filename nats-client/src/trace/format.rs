//! The W3C Trace Context header values: `traceparent` read and written, `tracestate` bounded.
//!
//! `traceparent` is `version-traceid-parentid-flags`: 2, 32, 16 and 2 lowercase hex digits. Version `00` is
//! exactly 55 characters. A later version (`01` to `fe`) is read as far as version `00` goes, provided what
//! follows is nothing or a `-` (its further fields are not looked at); `ff` is invalid. Of the flags only
//! `sampled` is defined; the others are reserved, and are sent as zero. What this crate sends is always
//! version `00`.

use std::fmt;
use std::sync::Arc;

use super::ids::{decode_hex, encode_hex, SpanId, TraceId};

/// Length of a version `00` `traceparent`, and of the part of a later version read.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// The `sampled` flag: the caller may have recorded this trace.
const SAMPLED: u8 = 0x01;

/// `tracestate` bytes carried at most (W3C asks to carry at least 512).
pub const MAX_TRACE_STATE_LEN: usize = 512;
/// `tracestate` list members carried at most (the most W3C allows).
pub const MAX_TRACE_STATE_MEMBERS: usize = 32;
/// Members longer than this go first when a `tracestate` must be cut (W3C's advice).
const LONG_MEMBER: usize = 128;

/// Why a `traceparent` (or a trace context's parts) was refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceContextError {
    /// Too short, or a version `00` value with more after it.
    Length,
    /// The version is `ff` (invalid) or not two lowercase hex digits.
    Version,
    /// A field is not lowercase hex.
    Hex,
    /// A `-` is missing between fields, or after a later version's flags.
    Separator,
    /// The trace id is all zeros.
    ZeroTraceId,
    /// The parent (span) id is all zeros.
    ZeroSpanId,
    /// A `tracestate` with a character outside printable ASCII.
    TraceState,
}

impl fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Length => "traceparent has the wrong length",
            Self::Version => "traceparent has an invalid version",
            Self::Hex => "traceparent has a field that is not lowercase hex",
            Self::Separator => "traceparent is missing a '-'",
            Self::ZeroTraceId => "traceparent has an all-zero trace id",
            Self::ZeroSpanId => "traceparent has an all-zero parent id",
            Self::TraceState => "tracestate has a character outside printable ASCII",
        })
    }
}

impl std::error::Error for TraceContextError {}

/// The parts of a `traceparent` this crate uses: trace id, parent id, sampled.
pub(crate) fn parse_traceparent(value: &str) -> Result<(TraceId, SpanId, bool), TraceContextError> {
    let b = value.trim_matches([' ', '\t']).as_bytes();
    if b.len() < TRACEPARENT_LEN {
        return Err(TraceContextError::Length);
    }
    let version = decode_hex::<1>(&b[..2]).ok_or(TraceContextError::Version)?[0];
    match version {
        0xff => return Err(TraceContextError::Version),
        0 if b.len() != TRACEPARENT_LEN => return Err(TraceContextError::Length),
        // A later version: only what version 00 has is read, and must end where a further field may start.
        _ if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' => return Err(TraceContextError::Separator),
        _ => {}
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return Err(TraceContextError::Separator);
    }
    let trace = decode_hex::<16>(&b[3..35]).ok_or(TraceContextError::Hex)?;
    let span = decode_hex::<8>(&b[36..52]).ok_or(TraceContextError::Hex)?;
    let flags = decode_hex::<1>(&b[53..55]).ok_or(TraceContextError::Hex)?[0];
    let trace = TraceId::from_bytes(trace).ok_or(TraceContextError::ZeroTraceId)?;
    let span = SpanId::from_bytes(span).ok_or(TraceContextError::ZeroSpanId)?;
    Ok((trace, span, flags & SAMPLED != 0))
}

/// The version `00` `traceparent` of these parts, into `out`.
pub(crate) fn encode_traceparent(trace: TraceId, span: SpanId, sampled: bool, out: &mut [u8; TRACEPARENT_LEN]) {
    out[..3].copy_from_slice(b"00-");
    encode_hex(&trace.to_bytes(), &mut out[3..35]);
    out[35] = b'-';
    encode_hex(&span.to_bytes(), &mut out[36..52]);
    out[52] = b'-';
    encode_hex(&[if sampled { SAMPLED } else { 0 }], &mut out[53..55]);
}

/// A `tracestate` to carry on: `value` as it came (blanks around it trimmed) when it holds at most
/// [`MAX_TRACE_STATE_LEN`] bytes and [`MAX_TRACE_STATE_MEMBERS`] list members; otherwise cut down to that,
/// members longer than 128 characters first, then from the end (W3C's advice). `Ok(None)` when nothing is
/// left; an error when it holds a character outside printable ASCII (which no list member may hold).
///
/// The members themselves are not checked beyond that: they belong to the vendors that wrote them, and are
/// carried, not read.
pub(crate) fn bound_trace_state(value: &str) -> Result<Option<Arc<str>>, TraceContextError> {
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| !(b == b'\t' || (b' '..=b'~').contains(&b))) {
        return Err(TraceContextError::TraceState);
    }
    let members = || value.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty());
    if value.len() <= MAX_TRACE_STATE_LEN && members().count() <= MAX_TRACE_STATE_MEMBERS {
        return Ok((!value.is_empty()).then(|| value.into()));
    }
    let mut kept: Vec<&str> = members().collect();
    let len = |kept: &[&str]| kept.iter().map(|m| m.len()).sum::<usize>() + kept.len().saturating_sub(1);
    while len(&kept) > MAX_TRACE_STATE_LEN || kept.len() > MAX_TRACE_STATE_MEMBERS {
        match kept.iter().rposition(|m| m.len() > LONG_MEMBER) {
            Some(long) => kept.remove(long),
            None => kept.pop().unwrap_or_default(),
        };
    }
    Ok((!kept.is_empty()).then(|| kept.join(",").into()))
}
