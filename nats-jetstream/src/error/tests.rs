//! Unit tests of the error classifier and the API error model.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

fn api(code: u16, err_code: u16) -> ApiError {
    ApiError { code, err_code: Some(err_code), description: "d".into() }
}

#[test]
fn every_typed_err_code() {
    let table = [
        (10059, ErrorCode::StreamNotFound),
        (10014, ErrorCode::ConsumerNotFound),
        (10037, ErrorCode::NoMessageFound),
        (10058, ErrorCode::StreamNameInUse),
        (10065, ErrorCode::SubjectsOverlap),
        (10148, ErrorCode::ConsumerAlreadyExists),
        (10149, ErrorCode::ConsumerDoesNotExist),
        (10013, ErrorCode::ConsumerNameExists),
        (10105, ErrorCode::ConsumerExistsActive),
        (10071, ErrorCode::WrongLastSequence),
        (10164, ErrorCode::WrongLastSequence),
        (10070, ErrorCode::WrongLastMsgId),
        (10060, ErrorCode::StreamMismatch),
        (10054, ErrorCode::MessageTooLarge),
        (10097, ErrorCode::HeaderTooLarge),
        (10077, ErrorCode::StoreFailed),
        (10158, ErrorCode::DuplicateInProcess),
        (10163, ErrorCode::ExpectedNotReady),
        (10167, ErrorCode::TooManyRequests),
        (10039, ErrorCode::NotEnabledForAccount),
        (10076, ErrorCode::NotEnabled),
        (10008, ErrorCode::TemporarilyUnavailable),
        (10023, ErrorCode::InsufficientResources),
        (10026, ErrorCode::MaxConsumers),
        (10027, ErrorCode::MaxStreams),
        (10003, ErrorCode::BadRequest),
        (10025, ErrorCode::InvalidJson),
        (10043, ErrorCode::SequenceNotFound),
        (10057, ErrorCode::DeleteFailed),
        (10109, ErrorCode::StreamSealed),
        (10165, ErrorCode::InvalidTtl),
        (10166, ErrorCode::TtlDisabled),
        (10185, ErrorCode::RequiredApiLevel),
        (10999, ErrorCode::Other(10999)),
        (0, ErrorCode::Other(0)),
    ];
    for (code, kind) in table {
        assert_eq!(ErrorCode::from_err_code(code), kind, "{code}");
        let body = format!(r#"{{"type":"t","error":{{"code":400,"err_code":{code},"description":"x"}}}}"#);
        let err = decode_reply::<Value>(body.as_bytes()).unwrap_err();
        assert_eq!(err.error_code(), Some(kind), "{code}");
    }
}

#[test]
fn retryable_codes() {
    for code in [10158, 10163, 10167, 10008, 10023] {
        assert!(api(503, code).is_retryable(), "{code}");
        assert!(JetStreamError::Api(api(503, code)).is_retryable());
    }
    for code in [10059, 10071, 10164, 10077, 10025, 10185, 1] {
        assert!(!api(400, code).is_retryable(), "{code}");
    }
    assert!(JetStreamError::NoResponders.is_retryable());
    assert!(!JetStreamError::Timeout.is_retryable());
    assert!(!JetStreamError::DomainAndPrefix.is_retryable());
}

#[test]
fn missing_err_code_falls_back_on_old_descriptions() {
    let old = |code, d: &str| ApiError { code, err_code: None, description: d.into() }.kind();
    assert_eq!(old(404, "stream not found"), ErrorCode::StreamNotFound);
    assert_eq!(old(404, "Consumer Not Found"), ErrorCode::ConsumerNotFound);
    assert_eq!(old(404, "no message found"), ErrorCode::NoMessageFound);
    assert_eq!(old(500, "stream not found"), ErrorCode::Other(0));
    assert_eq!(old(400, "something else"), ErrorCode::Other(0));
}

#[test]
fn display() {
    assert_eq!(api(404, 10059).to_string(), "JetStream error 404 (10059): d");
    let no_code = ApiError { code: 503, err_code: None, description: "x".into() };
    assert_eq!(no_code.to_string(), "JetStream error 503: x");
    assert_eq!(JetStreamError::Api(api(404, 10059)).to_string(), "JetStream error 404 (10059): d");
    let e = JetStreamError::InvalidName { name: "a.b".into(), reason: "r" };
    assert_eq!(e.to_string(), "invalid name \"a.b\": r");
    assert!(std::error::Error::source(&JetStreamError::Api(api(1, 2))).is_some());
    assert!(std::error::Error::source(&JetStreamError::Timeout).is_none());
}

#[test]
fn error_wins_over_success_fields() {
    let body = br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","config":{"name":"S"},"state":{},
            "error":{"code":404,"err_code":10059,"description":"stream not found"}}"#;
    let err = decode_reply::<Value>(body).unwrap_err();
    assert_eq!(err, JetStreamError::Api(api(404, 10059).with_description("stream not found")));
}

impl ApiError {
    fn with_description(mut self, d: &str) -> Self {
        self.description = d.into();
        self
    }
}

#[test]
fn odd_error_members() {
    // null is no error.
    let v: Value = decode_reply(br#"{"error":null,"ok":1}"#).unwrap();
    assert_eq!(v["ok"], 1);
    // A string error is still an error.
    let e = decode_reply::<Value>(br#"{"error":"boom"}"#).unwrap_err();
    assert_eq!(e, JetStreamError::Api(ApiError { code: 0, err_code: None, description: "boom".into() }));
    // An error of the wrong shape is still an error, described by its JSON.
    let e = decode_reply::<Value>(br#"{"error":{"code":"x"}}"#).unwrap_err();
    assert_eq!(e.api_error().map(|a| a.description.as_str()), Some(r#"{"code":"x"}"#));
    // Missing code and extra members.
    let e = decode_reply::<Value>(br#"{"error":{"err_code":10037,"new":true}}"#).unwrap_err();
    assert_eq!(e.error_code(), Some(ErrorCode::NoMessageFound));
}

#[test]
fn not_json_is_invalid_reply() {
    let bodies = [&b""[..], b"  \r\n", b"-ERR 'Unknown Protocol Operation'", b"+OK", b"{", b"\xff\xfe", b"[1,2"];
    for body in bodies.into_iter().chain([&br#"["boom"]"#[..], br#"[{"code":1}]"#, b"5", b"null", b"\"x\""]) {
        let err = decode_reply::<Value>(body).unwrap_err();
        assert!(matches!(err, JetStreamError::InvalidReply { .. }), "{body:?}: {err:?}");
    }
    let JetStreamError::InvalidReply { reason } = decode_reply::<Value>(b"-ERR 'nope'").unwrap_err() else {
        unreachable!()
    };
    assert!(reason.contains("-ERR 'nope'"), "{reason}");
    let long = vec![b'x'; 500];
    let JetStreamError::InvalidReply { reason } = decode_reply::<Value>(&long).unwrap_err() else { unreachable!() };
    assert!(reason.len() < 120 && reason.contains("..."), "{reason}");
}

#[test]
fn wrong_shape_is_invalid_reply() {
    #[derive(Debug, Deserialize)]
    struct Needs {
        #[allow(dead_code)]
        n: u64,
    }
    let err = decode_reply::<Needs>(br#"{"n":"text"}"#).unwrap_err();
    let JetStreamError::InvalidReply { reason } = err else { unreachable!() };
    assert!(reason.contains("Needs"), "{reason}");
}

#[test]
fn no_message_from_either_get_path() {
    assert!(JetStreamError::Api(api(404, 10037)).is_no_message());
    assert!(JetStreamError::Status { code: 404, description: "Message Not Found".into() }.is_no_message());
    assert!(!JetStreamError::Api(api(404, 10059)).is_no_message());
    assert!(!JetStreamError::Status { code: 408, description: String::new() }.is_no_message());
    assert!(!JetStreamError::NoResponders.is_no_message());
}

proptest! {
    #[test]
    fn decode_reply_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Never panics; a failure is always typed.
        match decode_reply::<Value>(&bytes) {
            Ok(v) => prop_assert!(v.get("error").is_none_or(Value::is_null)),
            Err(e) => prop_assert!(matches!(e, JetStreamError::Api(_) | JetStreamError::InvalidReply { .. }), "{e:?}"),
        }
        prop_assert!(decode_pub_ack(&bytes).map_or(true, |ack| !ack.stream.is_empty()));
    }

    #[test]
    fn decode_reply_is_total_on_jsonish(text in r#"\{("(error|stream|seq|code|err_code)":( ?null|[0-9]{1,6}|"[a-z]*"|\{[^{}]{0,20}\}|\[\])[,}]?){0,4}"#) {
        match decode_pub_ack(text.as_bytes()) {
            Ok(ack) => prop_assert!(!ack.stream.is_empty()),
            Err(e) => prop_assert!(matches!(e, JetStreamError::Api(_) | JetStreamError::InvalidReply { .. }), "{e:?}"),
        }
    }
}
