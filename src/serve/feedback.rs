//! What `POST /feedback` reads: `{"request_ids": [...], "y_true": [...]}`, the true labels of
//! requests scored through the running guard, joined to its prediction log by request id.
//!
//! Ids are strings (the ids `/invocations` returned: the request id for a one-row request,
//! `<request id>/<i>` for row `i` of a larger one); labels are the model's classes, all numbers
//! or all strings, one per id. Everything else is a 400 with the reason: a body that is not a
//! JSON object, an unknown key, a missing list, a length mismatch, a label of another type or
//! not among the model's classes, more than [`MAX_FEEDBACK_IDS`] ids. Pure: no I/O.

use serde_json::Value;

use crate::guard::predlog::{check_request_id, describe};
use crate::store::labels::{Label, Labels};

/// Most outcomes one `/feedback` request may carry (send more in several requests).
pub const MAX_FEEDBACK_IDS: usize = 100_000;

/// A parsed feedback body.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// The prediction-row ids.
    pub ids: Vec<String>,
    /// Their true labels.
    pub labels: Labels,
}

/// Parses a feedback body against the guarded models' `classes`; the error is the 400 message.
pub fn parse_feedback(body: &[u8], classes: &[Label]) -> Result<Feedback, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not JSON ({e}); send {{\"request_ids\": [...], \"y_true\": [...]}}")
    })?;
    let Value::Object(map) = v else {
        return Err(format!(
            "the body must be a JSON object {{\"request_ids\": [...], \"y_true\": [...]}}, got {}",
            describe(&v)
        ));
    };
    if let Some(k) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "request_ids" | "y_true"))
    {
        return Err(format!(
            "unknown key {k:?}; the body takes \"request_ids\" and \"y_true\" only"
        ));
    }
    let list = |key: &str| -> Result<&Vec<Value>, String> {
        match map.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(format!("{key} must be a list, got {}", describe(other))),
            None => Err(format!("{key} is missing; send it as a list")),
        }
    };
    let ids_json = list("request_ids")?;
    let y_json = list("y_true")?;
    if ids_json.len() != y_json.len() {
        return Err(format!(
            "got {} request_ids but {} y_true labels; send one label per id",
            ids_json.len(),
            y_json.len()
        ));
    }
    if ids_json.len() > MAX_FEEDBACK_IDS {
        return Err(format!(
            "{} outcomes in one request is too many; send at most {MAX_FEEDBACK_IDS} per request",
            ids_json.len()
        ));
    }
    let mut ids = Vec::with_capacity(ids_json.len());
    for (i, id) in ids_json.iter().enumerate() {
        let Value::String(s) = id else {
            return Err(format!(
                "request_ids[{i}] is {}; ids are strings (the ids /invocations returned)",
                describe(id)
            ));
        };
        check_request_id(s).map_err(|e| format!("request_ids[{i}]: {e}"))?;
        ids.push(s.clone());
    }
    let known = |l: &Label| classes.iter().any(|c| c.order(l).is_eq());
    let shown = || {
        let names: Vec<String> = classes.iter().take(20).map(Label::display).collect();
        names.join(", ")
    };
    let labels = match y_json.first() {
        None | Some(Value::Number(_)) => {
            let mut out = Vec::with_capacity(y_json.len());
            for (i, y) in y_json.iter().enumerate() {
                let x = match y {
                    Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
                    _ => None,
                };
                let Some(x) = x else {
                    return Err(format!(
                        "y_true[{i}] is {}; labels are all numbers or all strings (the model's \
                         classes)",
                        describe(y)
                    ));
                };
                if !known(&Label::Num(x)) {
                    return Err(format!(
                        "y_true[{i}] = {} is not one of the model's classes ({})",
                        describe(y),
                        shown()
                    ));
                }
                out.push(x);
            }
            Labels::Num(out)
        }
        Some(Value::String(_)) => {
            let mut out = Vec::with_capacity(y_json.len());
            for (i, y) in y_json.iter().enumerate() {
                let Value::String(s) = y else {
                    return Err(format!(
                        "y_true[{i}] is {}; labels are all numbers or all strings (the model's \
                         classes)",
                        describe(y)
                    ));
                };
                if !known(&Label::Str(s.clone())) {
                    return Err(format!(
                        "y_true[{i}] = {s:?} is not one of the model's classes ({})",
                        shown()
                    ));
                }
                out.push(s.clone());
            }
            Labels::Str(out)
        }
        Some(other) => {
            return Err(format!(
                "y_true[0] is {}; labels are numbers or strings (the model's classes)",
                describe(other)
            ))
        }
    };
    Ok(Feedback { ids, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<Label> {
        vec![Label::Num(0.0), Label::Num(1.0)]
    }

    #[test]
    fn ids_and_labels_of_the_models_classes_parse() {
        let f = parse_feedback(
            br#"{"request_ids": ["a", "b/1"], "y_true": [1, 0.0]}"#,
            &classes(),
        )
        .unwrap();
        assert_eq!(f.ids, vec!["a".to_string(), "b/1".to_string()]);
        assert!(matches!(&f.labels, Labels::Num(v) if v == &[1.0, 0.0]));
        let strings = [Label::Str("cat".into()), Label::Str("dog".into())];
        let f = parse_feedback(br#"{"request_ids": ["a"], "y_true": ["dog"]}"#, &strings).unwrap();
        assert!(matches!(&f.labels, Labels::Str(v) if v == &["dog"]));
        let empty = parse_feedback(br#"{"request_ids": [], "y_true": []}"#, &classes()).unwrap();
        assert!(empty.ids.is_empty());
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let c = classes();
        for (body, says) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "JSON object"),
            (br#"{"request_ids": ["a"]}"#, "y_true is missing"),
            (br#"{"request_ids": "a", "y_true": [1]}"#, "must be a list"),
            (
                br#"{"request_ids": ["a", "b"], "y_true": [1]}"#,
                "2 request_ids but 1",
            ),
            (br#"{"request_ids": [1], "y_true": [1]}"#, "ids are strings"),
            (br#"{"request_ids": [""], "y_true": [1]}"#, "not usable"),
            (
                br#"{"request_ids": ["a"], "y_true": [true]}"#,
                "numbers or strings",
            ),
            (
                br#"{"request_ids": ["a", "b"], "y_true": [1, "x"]}"#,
                "all numbers",
            ),
            (
                br#"{"request_ids": ["a"], "y_true": [7]}"#,
                "not one of the model's classes",
            ),
            (
                br#"{"request_ids": ["a"], "y_true": ["0"]}"#,
                "not one of the model's classes",
            ),
            (
                br#"{"request_ids": ["a"], "y_true": [1], "x": 1}"#,
                "unknown key",
            ),
        ] {
            let e = parse_feedback(body, &c).unwrap_err();
            assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(body));
        }
        let n = MAX_FEEDBACK_IDS + 1;
        let big = format!(
            "{{\"request_ids\": [{}], \"y_true\": [{}]}}",
            vec!["\"a\""; n].join(","),
            vec!["1"; n].join(",")
        );
        let e = parse_feedback(big.as_bytes(), &c).unwrap_err();
        assert!(e.contains("too many"), "{e}");
    }
}
