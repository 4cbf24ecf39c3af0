//! What `POST /invocations` does with a request it has read: pick the parser from the
//! content type, parse and check the rows against the served model, score them, and write
//! MLflow's answer, `{"predictions": [...]}`.
//!
//! Labels by default (the class labels the model was fitted with, as JSON numbers or
//! strings); probabilities (one list per row, in the order of `classes_`) when the request
//! asks for them, either way MLflow 2.x clients can:
//!
//! - the query string `?output=proba` (also `?output=label`), which works for CSV too;
//! - a JSON body's `"params": {"predict_proba": true}` (MLflow 2.x sends inference parameters
//!   in `params`).
//!
//! Both at once must agree. Pure: no I/O, no HTTP types, so every rule is tested here.

use ndarray::Array2;
use serde_json::{json, Value};

use crate::error::Result;
use crate::forest::predict::argmax_rows;
use crate::serve::csv_input::parse_csv;
use crate::serve::input::{bad, parse_json, Features};
use crate::serve::Served;

/// The body formats `/invocations` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` (also the default when no content type is sent, as curl users do).
    Json,
    /// `text/csv`.
    Csv,
}

/// Which answer a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Class labels.
    Label,
    /// Class probabilities.
    Proba,
}

/// The body format named by a `Content-Type` header; the error is the 415 message.
pub fn body_kind(content_type: Option<&str>) -> std::result::Result<BodyKind, String> {
    let Some(ct) = content_type else {
        return Ok(BodyKind::Json);
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => Ok(BodyKind::Json),
        "text/csv" => Ok(BodyKind::Csv),
        _ => Err(format!(
            "content type {ct:?} is not supported; send application/json (MLflow's \
             dataframe_split, dataframe_records, instances or inputs) or text/csv"
        )),
    }
}

/// The `output` parameter of a query string, if there is one.
pub fn query_output(query: Option<&str>) -> Result<Option<Output>> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "output" {
            continue;
        }
        found = Some(match value {
            "proba" | "predict_proba" => Output::Proba,
            "label" | "predict" => Output::Label,
            other => {
                return Err(bad(format!(
                    "output={other:?} is not known; use output=proba for probabilities or \
                     output=label (the default) for labels"
                )))
            }
        });
    }
    Ok(found)
}

/// An answered scoring request.
#[derive(Debug)]
pub struct Scored {
    /// The JSON response body.
    pub body: Vec<u8>,
    /// How many rows were scored.
    pub rows: usize,
}

/// A request read and checked against the served model's features.
#[derive(Debug)]
pub struct Parsed {
    /// The rows.
    pub x: Array2<f64>,
    /// The answer asked for.
    pub output: Output,
}

/// Parses `body` and checks its rows against `served`'s features.
pub fn parse_request(
    served: &Served,
    kind: BodyKind,
    body: &[u8],
    output: Option<Output>,
) -> Result<Parsed> {
    let features = Features::of(&served.manifest);
    let (x, from_params) = match kind {
        BodyKind::Json => {
            let request = parse_json(body, &features)?;
            let asked = match request.params.get("predict_proba") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(true)) => Some(Output::Proba),
                Some(Value::Bool(false)) => Some(Output::Label),
                Some(other) => {
                    return Err(bad(format!(
                        "params.predict_proba must be true or false, got {other}"
                    )))
                }
            };
            (request.x, asked)
        }
        BodyKind::Csv => (parse_csv(body, &features)?, None),
    };
    let output = match (output, from_params) {
        (Some(q), Some(p)) if q != p => {
            return Err(bad(
                "the query's output and params.predict_proba disagree; ask for one answer",
            ))
        }
        (q, p) => q.or(p).unwrap_or(Output::Label),
    };
    Ok(Parsed { x, output })
}

/// Writes MLflow's answer for `proba` (labels from `served`'s classes, or probabilities);
/// with `request_ids` (a guarded request), adds `"request_ids": [...]`, the ids to post
/// outcomes for (MLflow's clients read `predictions` only).
pub fn answer(
    served: &Served,
    proba: &Array2<f64>,
    output: Output,
    request_ids: Option<&[String]>,
) -> Result<Vec<u8>> {
    let predictions: Vec<Value> = match output {
        Output::Proba => proba
            .rows()
            .into_iter()
            .map(|r| json!(r.to_vec()))
            .collect(),
        Output::Label => {
            let classes = served.manifest.model.classes.as_array();
            argmax_rows(proba)
                .into_iter()
                .map(|k| {
                    classes
                        .and_then(|c| c.get(k as usize).cloned())
                        .unwrap_or_else(|| json!(k))
                })
                .collect()
        }
    };
    let v = match request_ids {
        None => json!({ "predictions": predictions }),
        Some(ids) => json!({ "predictions": predictions, "request_ids": ids }),
    };
    serde_json::to_vec(&v).map_err(|e| bad(format!("could not write the predictions: {e}")))
}

/// Parses `body`, scores it with `served` and writes the response body.
pub fn score(
    served: &Served,
    kind: BodyKind,
    body: &[u8],
    output: Option<Output>,
) -> Result<Scored> {
    let parsed = parse_request(served, kind, body, output)?;
    let proba = served.forest.predict_proba(parsed.x.view(), 1)?;
    Ok(Scored {
        body: answer(served, &proba, parsed.output, None)?,
        rows: proba.nrows(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_parser_or_are_refused() {
        assert_eq!(body_kind(None), Ok(BodyKind::Json));
        assert_eq!(
            body_kind(Some("application/json; format=pandas-split")),
            Ok(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("Text/CSV; charset=utf-8")),
            Ok(BodyKind::Csv)
        );
        let m = body_kind(Some("application/xml")).unwrap_err();
        assert!(m.contains("not supported") && m.contains("text/csv"), "{m}");
    }

    #[test]
    fn the_query_asks_for_probabilities_or_labels() {
        assert_eq!(query_output(None).unwrap(), None);
        assert_eq!(query_output(Some("a=1")).unwrap(), None);
        assert_eq!(
            query_output(Some("x=1&output=proba")).unwrap(),
            Some(Output::Proba)
        );
        assert_eq!(
            query_output(Some("output=label")).unwrap(),
            Some(Output::Label)
        );
        let e = query_output(Some("output=logits")).unwrap_err().to_string();
        assert!(e.contains("output=proba"), "{e}");
    }
}
