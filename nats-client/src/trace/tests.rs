//! The trace context's unit tests: the W3C format's edge cases, the bounds of `tracestate`, and the current
//! context of closures and futures.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use nats_proto::Headers;
use proptest::prelude::*;

use super::format::{bound_trace_state, parse_traceparent};
use super::*;

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn parse(value: &str) -> Result<TraceContext, TraceContextError> {
    TraceContext::parse(value, None)
}

#[test]
fn the_specs_example_reads_and_writes_back_the_same() {
    let ctx = parse(VALID).unwrap();
    assert_eq!(ctx.trace_id().to_string(), TRACE);
    assert_eq!(ctx.span_id().to_string(), SPAN);
    assert!(ctx.is_sampled());
    assert_eq!(ctx.to_string(), VALID);
    let unsampled = parse(&VALID.replace("-01", "-00")).unwrap();
    assert!(!unsampled.is_sampled());
    assert_eq!(unsampled.to_string(), VALID.replace("-01", "-00"));
    // Blanks around a header value are not part of it.
    assert_eq!(parse(&format!(" \t{VALID} ")).unwrap(), ctx);
}

#[test]
fn uppercase_hex_is_refused_in_every_field() {
    assert_eq!(parse(&VALID.replace(TRACE, &TRACE.to_uppercase())), Err(TraceContextError::Hex));
    assert_eq!(parse(&VALID.replace(SPAN, "00F067AA0BA902B7")), Err(TraceContextError::Hex));
    assert_eq!(parse(&format!("{}0A", &VALID[..53])), Err(TraceContextError::Hex));
    assert_eq!(parse(&format!("0A{}", &VALID[2..])), Err(TraceContextError::Version));
}

#[test]
fn version_ff_is_invalid() {
    assert_eq!(parse(&format!("ff{}", &VALID[2..])), Err(TraceContextError::Version));
    assert_eq!(parse(&format!("ff{}-more", &VALID[2..])), Err(TraceContextError::Version));
}

#[test]
fn a_future_version_is_read_as_far_as_version_00_goes() {
    let exact = parse(&format!("cc{}", &VALID[2..])).unwrap();
    assert_eq!((exact.trace_id().to_string(), exact.span_id().to_string()), (TRACE.into(), SPAN.into()));
    let extra = parse(&format!("cc{}-what-the-future-will-be-like", &VALID[2..])).unwrap();
    assert_eq!(extra, exact);
    // What is sent on is version 00, whatever came in.
    assert_eq!(extra.to_string(), VALID);
    // The next field must start with a dash.
    assert_eq!(parse(&format!("cc{}.what", &VALID[2..])), Err(TraceContextError::Separator));
    assert_eq!(parse(&format!("cc{}what", &VALID[2..])), Err(TraceContextError::Separator));
}

#[test]
fn version_00_has_nothing_after_its_flags() {
    assert_eq!(parse(&format!("{VALID}-")), Err(TraceContextError::Length));
    assert_eq!(parse(&format!("{VALID}-what-the-future-will-be-like")), Err(TraceContextError::Length));
    assert_eq!(parse(&format!("{VALID}0")), Err(TraceContextError::Length));
}

#[test]
fn all_zero_ids_are_invalid() {
    assert_eq!(parse(&VALID.replace(TRACE, &"0".repeat(32))), Err(TraceContextError::ZeroTraceId));
    assert_eq!(parse(&VALID.replace(SPAN, &"0".repeat(16))), Err(TraceContextError::ZeroSpanId));
    assert!(TraceId::from_bytes([0; 16]).is_none() && SpanId::from_bytes([0; 8]).is_none());
    assert!(TraceId::from_hex(&"0".repeat(32)).is_none());
}

#[test]
fn short_malformed_or_odd_values_are_refused() {
    assert_eq!(parse(""), Err(TraceContextError::Length));
    assert_eq!(parse(&VALID[..54]), Err(TraceContextError::Length));
    assert_eq!(parse(&VALID.replace(TRACE, &format!("{}g", &TRACE[..31]))), Err(TraceContextError::Hex));
    assert_eq!(parse(&VALID.replacen('-', "_", 1)), Err(TraceContextError::Separator));
    assert_eq!(parse(&VALID.replace("-00f0", "_00f0")), Err(TraceContextError::Separator));
    assert_eq!(parse(&VALID.replace("-01", ".01")), Err(TraceContextError::Separator));
    // Trace and span ids of the wrong lengths, the dashes where others would be.
    assert_eq!(parse(&format!("00-{TRACE}0-0f067aa0ba902b7-01")), Err(TraceContextError::Separator));
    // A multi-byte character where a hex digit should be: refused, no panic on a char boundary.
    assert_eq!(parse(&VALID.replace("4736", "47é")), Err(TraceContextError::Hex));
}

#[test]
fn only_the_sampled_flag_is_kept() {
    let other_flags = parse(&format!("{}09", &VALID[..53])).unwrap();
    assert!(other_flags.is_sampled());
    assert_eq!(other_flags.to_string(), VALID, "reserved flags are sent as zero");
    let not_sampled = parse(&format!("{}fe", &VALID[..53])).unwrap();
    assert!(!not_sampled.is_sampled());
    assert!(not_sampled.to_string().ends_with("-00"));
}

#[test]
fn tracestate_is_carried_verbatim_within_its_bounds() {
    let state = "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE";
    assert_eq!(bound_trace_state(&format!(" {state} ")).unwrap().as_deref(), Some(state));
    assert_eq!(bound_trace_state("").unwrap(), None);
    assert_eq!(bound_trace_state(" , ").unwrap().as_deref(), Some(","), "empty members are carried as they are");
    assert_eq!(bound_trace_state("a=1\r\nb=2"), Err(TraceContextError::TraceState));
    assert_eq!(bound_trace_state("a=\u{7f}"), Err(TraceContextError::TraceState));
    assert_eq!(bound_trace_state("a=é"), Err(TraceContextError::TraceState));
}

#[test]
fn a_long_tracestate_is_cut_at_members_long_ones_first() {
    let members: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
    let cut = bound_trace_state(&members.join(",")).unwrap().unwrap();
    assert_eq!(cut.split(',').count(), MAX_TRACE_STATE_MEMBERS);
    assert_eq!(&*cut, members[..32].join(","), "the first 32 members, as they were");

    let long = format!("long={}", "x".repeat(200));
    let small: Vec<String> = (0..20).map(|i| format!("vendor{i:02}={}", "y".repeat(12))).collect();
    let value = format!("{},{long},{}", small[..10].join(","), small[10..].join(","));
    assert!(value.len() > MAX_TRACE_STATE_LEN);
    let cut = bound_trace_state(&value).unwrap().unwrap();
    assert_eq!(&*cut, small.join(","), "the member over 128 characters goes first, the rest fits");

    let value: String = (0..30).map(|i| format!("vendor{i:02}={}", "z".repeat(20))).collect::<Vec<_>>().join(",");
    let cut = bound_trace_state(&value).unwrap().unwrap();
    assert!(cut.len() <= MAX_TRACE_STATE_LEN && value.starts_with(&*cut), "{} bytes: {cut}", cut.len());
    assert!(cut.ends_with(&"z".repeat(20)), "cut between members, not inside one: {cut}");
}

#[test]
fn a_child_is_in_the_same_trace_with_a_span_of_its_own() {
    let parent = TraceContext::parse(VALID, Some("congo=t61rcWkgMzE")).unwrap();
    let child = parent.child();
    assert_eq!(child.trace_id(), parent.trace_id());
    assert_ne!(child.span_id(), parent.span_id());
    assert_eq!((child.is_sampled(), child.trace_state()), (true, Some("congo=t61rcWkgMzE")));
    assert_ne!(child.child().span_id(), child.span_id());
    let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
    assert_ne!(a.trace_id(), b.trace_id());
    assert!(a.is_sampled() && a.trace_state().is_none());
    let other = std::thread::spawn(TraceContext::new_root).join().unwrap();
    assert_ne!(other.trace_id(), a.trace_id(), "each thread's generator is seeded apart");
}

#[test]
fn headers_carry_the_context_and_read_it_back() {
    let ctx = TraceContext::parse(VALID, Some("a=1")).unwrap();
    let mut headers = Headers::new();
    headers.insert("other", "kept").unwrap();
    ctx.write_headers(&mut headers);
    assert_eq!((headers.get(TRACEPARENT), headers.get(TRACESTATE)), (Some(VALID), Some("a=1")));
    assert_eq!(TraceContext::from_headers(headers.to_block().view()), Some(ctx));
}

#[test]
fn headers_are_read_as_w3c_asks() {
    let read = |pairs: &[(&str, &str)]| {
        let headers: Headers = pairs.iter().copied().collect();
        TraceContext::from_headers(headers.to_block().view())
    };
    assert_eq!(read(&[("TraceParent", VALID)]).unwrap().to_string(), VALID, "names ignore case");
    assert_eq!(read(&[("traceparent", VALID), ("traceparent", VALID)]), None, "two are one too many");
    assert_eq!(read(&[("tracestate", "a=1")]), None, "a tracestate alone is no context");
    assert_eq!(read(&[("traceparent", "00-garbage")]), None);
    let joined = read(&[("tracestate", "a=1"), ("traceparent", VALID), ("Tracestate", "b=2")]).unwrap();
    assert_eq!(joined.trace_state(), Some("a=1,b=2"), "several tracestate headers are one list");
    let bad_state = read(&[("traceparent", VALID), ("tracestate", "a=\u{1}")]).unwrap();
    assert_eq!((bad_state.to_string().as_str(), bad_state.trace_state()), (VALID, None));
}

#[test]
fn a_scope_sets_the_current_context_and_puts_back_the_one_before() {
    assert_eq!(TraceContext::current(), None);
    let (outer, inner) = (TraceContext::new_root(), TraceContext::new_root());
    outer.in_scope(|| {
        assert_eq!(TraceContext::current().as_ref(), Some(&outer));
        inner.in_scope(|| assert_eq!(TraceContext::current().as_ref(), Some(&inner)));
        with_context(None, || assert_eq!(TraceContext::current(), None));
        let unwound = std::panic::catch_unwind(|| inner.in_scope(|| panic!("in the scope")));
        assert!(unwound.is_err());
        assert_eq!(TraceContext::current().as_ref(), Some(&outer), "put back after a panic too");
    });
    assert_eq!(TraceContext::current(), None);
}

#[test]
fn the_send_path_adds_the_current_context_unless_the_caller_set_one() {
    assert_eq!(outgoing(None), None, "no context: nothing added");
    let ctx = TraceContext::parse(VALID, Some("a=1")).unwrap();
    let mine: Headers =
        [("traceparent", "00-11111111111111111111111111111111-2222222222222222-00")].into_iter().collect();
    let their_state: Headers = [("tracestate", "b=2"), ("x", "y")].into_iter().collect();
    ctx.in_scope(|| {
        let added = outgoing(None).unwrap();
        assert_eq!((added.get(TRACEPARENT), added.get(TRACESTATE)), (Some(VALID), Some("a=1")));
        assert_eq!(outgoing(Some(&mine)), None, "the caller's traceparent goes as it is");
        let kept = outgoing(Some(&their_state)).unwrap();
        assert_eq!(kept.get(TRACEPARENT), Some(VALID));
        assert_eq!((kept.get(TRACESTATE), kept.get("x")), (Some("b=2"), Some("y")), "the caller's tracestate too");
    });
}

/// Records the current context at each poll; ready at the second.
struct Probe {
    seen: Arc<Mutex<Vec<Option<TraceContext>>>>,
}

impl Future for Probe {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut seen = self.seen.lock().unwrap();
        seen.push(TraceContext::current());
        if seen.len() == 1 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.seen.lock().unwrap().push(TraceContext::current());
    }
}

#[test]
fn a_scoped_future_has_its_context_at_every_poll_on_any_thread_and_when_dropped() {
    let seen = Arc::new(Mutex::new(vec![]));
    let ctx = TraceContext::new_root();
    let mut future = Box::pin(ctx.clone().scope(Probe { seen: seen.clone() }));
    let poller = TraceContext::new_root();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(poller.in_scope(|| future.as_mut().poll(&mut cx)).is_pending());
    assert_eq!(future.context(), Some(&ctx), "taken back after the poll");
    let future = std::thread::spawn(move || {
        assert!(future.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_ready());
        assert_eq!(TraceContext::current(), None, "the polling thread's own after the poll");
        future
    })
    .join()
    .unwrap();
    poller.in_scope(|| drop(future));
    assert_eq!(*seen.lock().unwrap(), [Some(ctx.clone()), Some(ctx.clone()), Some(ctx)]);

    let seen = Arc::new(Mutex::new(vec![]));
    let mut none = Box::pin(Scoped::new(None, Probe { seen: seen.clone() }));
    assert!(poller.in_scope(|| none.as_mut().poll(&mut cx)).is_pending());
    assert_eq!(seen.lock().unwrap()[0], None, "a future scoped without a context runs without one");
}

proptest! {
    #[test]
    fn any_valid_context_reads_back_as_written(trace in any::<[u8; 16]>(), span in any::<[u8; 8]>(), sampled in any::<bool>()) {
        let (Some(trace), Some(span)) = (TraceId::from_bytes(trace), SpanId::from_bytes(span)) else { return Ok(()) };
        let ctx = TraceContext::new(trace, span, sampled);
        prop_assert_eq!(parse(&ctx.to_string()), Ok(ctx.clone()));
        prop_assert_eq!(TraceId::from_hex(&trace.to_string()), Some(trace));
        prop_assert_eq!(SpanId::from_hex(&span.to_string()), Some(span));
    }

    #[test]
    fn no_input_makes_the_reader_panic(value in "\\PC{0,80}", tail in "[0-9a-fA-F-]{0,70}") {
        let _ = parse_traceparent(&value);
        let _ = parse_traceparent(&format!("{}{tail}", &VALID[..3]));
        let _ = bound_trace_state(&value);
    }

    #[test]
    fn a_changed_character_is_refused_or_reads_as_another_context(at in 0usize..55, c in any::<char>()) {
        let mut changed: Vec<char> = VALID.chars().collect();
        prop_assume!(changed[at] != c);
        changed[at] = c;
        let changed: String = changed.into_iter().collect();
        let dash = [2, 35, 52].contains(&at);
        if let Ok(ctx) = parse(&changed) {
            prop_assert!(!dash && c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{} read", changed);
            // The same context only if the version or a flag bit other than `sampled` changed.
            prop_assert!(ctx != parse(VALID).unwrap() || !(2..53).contains(&at), "{} read as {}", changed, ctx);
        }
    }
}
