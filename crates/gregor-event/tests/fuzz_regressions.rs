//! Inputs the fuzz driver (fuzz/, target `event`) found, kept so the bugs stay fixed: whatever
//! gregor reads it must be able to write and read again.

use gregor_event::{Event, Headers, cloudevents};

fn envelope_with_timestamp(timestamp: &str) -> String {
    format!(
        r#"{{"id":"0b8f6a8e-4f0a-4f6e-9a53-0d5c2b0c7e11","type":"order.created","timestamp":{timestamp},"source":"fuzz","data":{{}},"metadata":{{}}}}"#
    )
}

/// fuzz/findings/event/numeric-timestamp-out-of-rfc3339-range.bin: a numeric timestamp of
/// year -5156 was accepted, then written as text that the reader refuses.
#[test]
fn timestamps_rfc3339_cannot_write_are_refused_on_read() {
    for ts in ["-224843770182324833", "253402300800000000"] {
        let err = Event::from_json(envelope_with_timestamp(ts).as_bytes())
            .expect_err("a year outside 0000..=9999 is refused");
        assert!(err.to_string().contains("0000..=9999"), "{err}");
    }
    // Text whose offset moves it before year 0 in UTC.
    let err =
        Event::from_json(envelope_with_timestamp(r#""0000-01-01T00:00:00+01:00""#).as_bytes())
            .expect_err("year -1 in UTC is refused");
    assert!(err.to_string().contains("0000..=9999"), "{err}");

    // The edges that can be written are read, written and read back unchanged.
    for ts in [
        r#""0000-01-01T00:00:00Z""#,
        r#""9999-12-31T23:59:59.999999Z""#,
        "0",
    ] {
        let e = Event::from_json(envelope_with_timestamp(ts).as_bytes()).expect(ts);
        let again = Event::from_json(e.to_json().unwrap().as_bytes()).expect("round trip");
        assert_eq!(again, e);
    }
}

fn ce_headers(extension: &str) -> Headers {
    let mut h = Headers::new();
    h.append("ce_specversion", "1.0");
    h.append("ce_id", "0b8f6a8e-4f0a-4f6e-9a53-0d5c2b0c7e11");
    h.append("ce_source", "/fuzz");
    h.append("ce_type", "order.created");
    h.append("ce_time", "2026-11-28T10:00:00Z");
    h.append(format!("ce_{extension}"), "x");
    h
}

/// fuzz/findings/event/cloudevents-extension-name-not-writable.bin: an extension name that
/// to_binary refuses was accepted by from_binary.
#[test]
fn cloudevents_extension_names_to_binary_refuses_are_refused_on_read() {
    for bad in ["Region", "re-gion", "", "abcdefghijklmnopqrstu", "data"] {
        let err = cloudevents::from_binary(&ce_headers(bad), Some(b"{}"))
            .expect_err("invalid extension name refused");
        assert!(err.to_string().contains(&format!("ce_{bad}")), "{err}");
    }
    let e = cloudevents::from_binary(&ce_headers("region"), Some(b"{}")).expect("valid");
    let (h, v) = cloudevents::to_binary(&e).expect("written back");
    assert_eq!(
        cloudevents::from_binary(&h, Some(&v)).expect("read again"),
        e
    );
    // A ce_time before year 0 is refused like the envelope's.
    let mut h = ce_headers("region");
    h.insert("ce_time", "0000-01-01T00:00:00+01:00");
    assert!(cloudevents::from_binary(&h, Some(b"{}")).is_err());
}

/// fuzz/findings/event/json-float-not-round-trip.bin: a number inside `data` that is not
/// money (`8582764154749999.99`) read back as a neighbouring float, because serde_json parses
/// floats with a fast, slightly rounded algorithm unless `float_roundtrip` is on (it is, for
/// the workspace). An event read, written and read again is the same event.
#[test]
fn floats_in_data_read_write_read_unchanged() {
    let text = r#"{"id":"6f1c5a52-8c1e-4d3f-9a53-2b1a9b0d7e11","type":"order.created","timestamp":"2026-11-28T10:00:00Z","source":"fuzz","data":{"amount":8582764154749999.99,"price":9999999999999.99,"tiny":5e-324}}"#;
    let first: gregor_event::Event = serde_json::from_str(text).expect("read");
    let written = serde_json::to_string(&first).expect("write");
    let second: gregor_event::Event = serde_json::from_str(&written).expect("read again");
    assert_eq!(first.data, second.data, "written as {written}");
    // The exact value: the closest double to the text, as Rust's own parser finds it.
    let amount = first.data["amount"].as_f64().expect("a float");
    assert_eq!(amount, "8582764154749999.99".parse::<f64>().unwrap());
}
