//! Scoring requests in the JSON formats of MLflow's scoring server, turned into a feature
//! matrix the served model accepts, with the column checks the estimator itself makes.
//!
//! This is the parsing half of `POST /invocations` (`http.rs` is the server, `csv_input.rs`
//! the `text/csv` twin); it is pure and has no I/O, so it is tested here on its own. Accepted bodies (exactly one of the
//! four keys, plus an optional `params` object):
//!
//! - `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (`index` is ignored);
//! - `{"dataframe_records": [{"col": value, ...}, ...]}`;
//! - `{"instances": [[...], ...]}` or `{"instances": [{"col": value, ...}, ...]}`;
//! - `{"inputs": [[...], ...]}` or `{"inputs": {"col": [values...], ...}}` (columnar).
//!
//! Values are JSON numbers or `null` (a missing value, NaN, which the forest routes as learned).
//! Anything else (strings, booleans, nested lists, numbers out of range) is refused with a
//! message naming the row and column. Column names are checked as scikit-learn checks them for
//! a model fitted with names: the same names in the same order. Rows given as JSON objects have
//! no order (RFC 8259), so they are matched by name instead, and a missing or unknown name is
//! refused. A model fitted without names takes columns by position; names sent to it are
//! ignored, as scikit-learn ignores them (with a warning).

use ndarray::Array2;
use serde_json::{Map, Value};

use crate::error::{Result, WoodlotError};
use crate::store::Manifest;

/// Largest number of values one request may carry (rows x columns), whatever its byte size.
pub const MAX_VALUES: usize = 1 << 24;

/// What the served model expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Number of features.
    pub n: usize,
    /// Their names, if the model was fitted with names.
    pub names: Option<Vec<String>>,
}

impl Features {
    /// The features recorded in a version's manifest.
    pub fn of(manifest: &Manifest) -> Self {
        let names = manifest.model.feature_names.as_array().and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        Self {
            n: manifest.model.n_features as usize,
            names,
        }
    }
}

/// A parsed scoring request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The rows, in the model's column order.
    pub x: Array2<f64>,
    /// The request's `params` object (empty if none).
    pub params: Map<String, Value>,
}

pub(crate) fn bad(message: impl Into<String>) -> WoodlotError {
    WoodlotError::InvalidInput(message.into())
}

/// One value: a finite JSON number, or `null` for a missing value.
fn number(v: &Value, row: usize, col: &dyn std::fmt::Display) -> Result<f64> {
    match v {
        Value::Null => Ok(f64::NAN),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(bad(format!(
                "row {row}, column {col}: {n} is not a finite number"
            ))),
        },
        other => Err(bad(format!(
            "row {row}, column {col}: expected a number or null, got {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn check_size(rows: usize, cols: usize) -> Result<()> {
    if rows == 0 {
        return Err(bad("the request has no rows"));
    }
    if rows.saturating_mul(cols) > MAX_VALUES {
        return Err(bad(format!(
            "the request holds {rows} x {cols} values; at most {MAX_VALUES} are accepted per request"
        )));
    }
    Ok(())
}

/// Rows given as lists, with optional column names, checked against the model.
fn from_lists(rows: &[Value], columns: Option<Vec<String>>, f: &Features) -> Result<Array2<f64>> {
    check_columns(columns.as_deref(), f)?;
    check_size(rows.len(), f.n)?;
    let mut x = Array2::<f64>::zeros((rows.len(), f.n));
    for (i, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or_else(|| {
            bad(format!(
                "row {i}: expected a list of values, got {}",
                kind(row)
            ))
        })?;
        if row.len() != f.n {
            return Err(bad(format!(
                "row {i} has {} values; the model takes {} features",
                row.len(),
                f.n
            )));
        }
        for (j, v) in row.iter().enumerate() {
            x[[i, j]] = number(v, i, &j)?;
        }
    }
    Ok(x)
}

/// Column names sent with positional rows, checked as scikit-learn checks them: a model
/// fitted with names wants the same names in the same order; one fitted without takes
/// columns by position, so only their number matters.
pub(crate) fn check_columns(columns: Option<&[String]>, f: &Features) -> Result<()> {
    if let (Some(cols), Some(names)) = (columns, &f.names) {
        if cols != names {
            return Err(bad(format!(
                "the column names must match the ones the model was fitted with, in the same \
                 order: expected {names:?}, got {cols:?}"
            )));
        }
    }
    if let Some(cols) = columns {
        if cols.len() != f.n {
            return Err(bad(format!(
                "{} columns given; the model takes {} features",
                cols.len(),
                f.n
            )));
        }
    }
    Ok(())
}

/// The model's names, required for rows given as objects.
fn names_for_objects<'a>(f: &'a Features, what: &str) -> Result<&'a [String]> {
    f.names.as_deref().ok_or_else(|| {
        bad(format!(
            "{what} name columns, but the model was fitted without feature names; send rows \
             as lists (dataframe_split, or instances/inputs as lists of lists)"
        ))
    })
}

fn unknown_key(obj: &Map<String, Value>, names: &[String]) -> Option<String> {
    obj.keys().find(|k| !names.contains(k)).cloned()
}

/// Rows given as objects (`{"col": value}`), matched by name.
fn from_objects(rows: &[Value], f: &Features, what: &str) -> Result<Array2<f64>> {
    let names = names_for_objects(f, what)?;
    check_size(rows.len(), f.n)?;
    let mut x = Array2::<f64>::zeros((rows.len(), f.n));
    for (i, row) in rows.iter().enumerate() {
        let obj = row.as_object().ok_or_else(|| {
            bad(format!(
                "row {i}: expected an object of column: value, got {}",
                kind(row)
            ))
        })?;
        if let Some(k) = unknown_key(obj, names) {
            return Err(bad(format!(
                "row {i}: unknown column {k:?}; the model's features are {names:?}"
            )));
        }
        for (j, name) in names.iter().enumerate() {
            let v = obj
                .get(name)
                .ok_or_else(|| bad(format!("row {i}: column {name:?} is missing")))?;
            x[[i, j]] = number(v, i, &format!("{name:?}"))?;
        }
    }
    Ok(x)
}

/// Columnar `{"col": [values...]}`, matched by name.
fn from_columns(cols: &Map<String, Value>, f: &Features) -> Result<Array2<f64>> {
    let names = names_for_objects(f, "inputs given as an object")?;
    if let Some(k) = unknown_key(cols, names) {
        return Err(bad(format!(
            "unknown column {k:?}; the model's features are {names:?}"
        )));
    }
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let col = cols
            .get(name)
            .ok_or_else(|| bad(format!("column {name:?} is missing")))?
            .as_array()
            .ok_or_else(|| bad(format!("column {name:?}: expected a list of values")))?;
        columns.push(col);
    }
    let n_rows = columns.first().map_or(0, |c| c.len());
    if let Some((name, c)) = names.iter().zip(&columns).find(|(_, c)| c.len() != n_rows) {
        return Err(bad(format!(
            "column {name:?} has {} values but {:?} has {n_rows}",
            c.len(),
            names[0]
        )));
    }
    check_size(n_rows, f.n)?;
    let mut x = Array2::<f64>::zeros((n_rows, f.n));
    for (j, (name, col)) in names.iter().zip(&columns).enumerate() {
        for (i, v) in col.iter().enumerate() {
            x[[i, j]] = number(v, i, &format!("{name:?}"))?;
        }
    }
    Ok(x)
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|c| c.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| bad(format!("{what} must be a list of strings")))
}

const FORMATS: &str = "dataframe_split, dataframe_records, instances or inputs";

/// Parses a JSON scoring request for a model with features `f`.
pub fn parse_json(body: &[u8], f: &Features) -> Result<Request> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(format!(
            "the request body is empty; send a JSON object with one of {FORMATS}"
        )));
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut obj) = doc else {
        return Err(bad(format!(
            "the body must be a JSON object with one of {FORMATS}, got {}",
            kind(&doc)
        )));
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(other) => {
            return Err(bad(format!(
                "params must be an object, got {}",
                kind(&other)
            )))
        }
    };
    let keys: Vec<&String> = obj.keys().collect();
    let (key, value) = match keys.as_slice() {
        [k] => {
            let k = (*k).clone();
            let v = obj.remove(&k).unwrap_or(Value::Null);
            (k, v)
        }
        [] => return Err(bad(format!("the body has none of {FORMATS}"))),
        many => {
            return Err(bad(format!(
                "the body must hold exactly one of {FORMATS} (and optionally params), got {many:?}"
            )))
        }
    };
    let x = match (key.as_str(), &value) {
        ("dataframe_split", Value::Object(split)) => {
            let data = split
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("dataframe_split needs \"data\": a list of rows"))?;
            let columns = split
                .get("columns")
                .map(|c| string_list(c, "dataframe_split columns"))
                .transpose()?;
            from_lists(data, columns, f)?
        }
        ("dataframe_records", Value::Array(rows)) => from_objects(rows, f, "dataframe_records")?,
        ("instances" | "inputs", Value::Array(rows)) => match rows.first() {
            Some(Value::Object(_)) => from_objects(rows, f, &format!("{key} given as objects"))?,
            _ => from_lists(rows, None, f)?,
        },
        ("inputs", Value::Object(cols)) => from_columns(cols, f)?,
        ("dataframe_split" | "dataframe_records" | "instances" | "inputs", v) => {
            return Err(bad(format!("{key} has the wrong shape ({})", kind(v))))
        }
        (other, _) => return Err(bad(format!("unknown key {other:?}; send one of {FORMATS}"))),
    };
    Ok(Request { x, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named() -> Features {
        Features {
            n: 2,
            names: Some(vec!["a".into(), "b".into()]),
        }
    }

    fn unnamed() -> Features {
        Features { n: 2, names: None }
    }

    fn ok(body: &str, f: &Features) -> Array2<f64> {
        parse_json(body.as_bytes(), f)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .x
    }

    fn err(body: &[u8], f: &Features) -> String {
        match parse_json(body, f) {
            Err(WoodlotError::InvalidInput(m)) => m,
            other => panic!(
                "{:?}: expected InvalidInput, got {other:?}",
                String::from_utf8_lossy(body)
            ),
        }
    }

    #[test]
    fn every_mlflow_format_gives_the_same_rows() {
        let want = ndarray::array![[1.0, 2.0], [3.0, 4.5]];
        for body in [
            r#"{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4.5]]}}"#,
            r#"{"dataframe_split": {"index": [7, 8], "data": [[1, 2], [3, 4.5]]}}"#,
            r#"{"dataframe_records": [{"b": 2, "a": 1}, {"a": 3, "b": 4.5}]}"#,
            r#"{"instances": [[1, 2], [3, 4.5]]}"#,
            r#"{"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4.5}]}"#,
            r#"{"inputs": [[1, 2], [3, 4.5]], "params": {"predict_proba": true}}"#,
            r#"{"inputs": {"a": [1, 3], "b": [2, 4.5]}}"#,
        ] {
            assert_eq!(ok(body, &named()), want, "{body}");
        }
        let r = parse_json(br#"{"inputs": [[1, 2]], "params": {"k": 1}}"#, &unnamed()).unwrap();
        assert_eq!(r.params["k"], 1);
    }

    #[test]
    fn null_is_a_missing_value() {
        let x = ok(r#"{"instances": [[null, 1]]}"#, &unnamed());
        assert!(x[[0, 0]].is_nan() && x[[0, 1]] == 1.0);
    }

    #[test]
    fn names_are_checked_as_the_estimator_checks_them() {
        let swapped = r#"{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2]]}}"#;
        assert!(err(swapped.as_bytes(), &named()).contains("same order"));
        // A model fitted without names takes columns by position, whatever they are called.
        assert_eq!(ok(swapped, &unnamed()), ndarray::array![[1.0, 2.0]]);
        let m = err(br#"{"dataframe_records": [{"a": 1, "c": 2}]}"#, &named());
        assert!(m.contains("unknown column \"c\""), "{m}");
        let m = err(br#"{"dataframe_records": [{"a": 1}]}"#, &named());
        assert!(m.contains("\"b\" is missing"), "{m}");
        let m = err(br#"{"dataframe_records": [{"a": 1, "b": 2}]}"#, &unnamed());
        assert!(m.contains("without feature names"), "{m}");
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let f = named();
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{", "not valid JSON"),
            (b"\xff\xfe", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b"{}", "none of"),
            (
                br#"{"instances": [[1, 2]], "inputs": [[1, 2]]}"#,
                "exactly one",
            ),
            (br#"{"rows": [[1, 2]]}"#, "unknown key"),
            (br#"{"instances": []}"#, "no rows"),
            (br#"{"instances": [[1, 2, 3]]}"#, "row 0 has 3 values"),
            (
                br#"{"instances": [[1, "x"]]}"#,
                "row 0, column 1: expected a number or null, got a string",
            ),
            (br#"{"instances": [[1, true]]}"#, "a boolean"),
            (br#"{"instances": [[1, [2]]]}"#, "a list"),
            (br#"{"instances": [[1, 1e999]]}"#, "not valid JSON"),
            (br#"{"instances": [[1, Infinity]]}"#, "not valid JSON"),
            (br#"{"instances": [[1, NaN]]}"#, "not valid JSON"),
            (br#"{"instances": [1, 2]}"#, "row 0: expected a list"),
            (br#"{"instances": 3}"#, "wrong shape"),
            (br#"{"dataframe_split": {"data": 3}}"#, "needs \"data\""),
            (
                br#"{"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}"#,
                "list of strings",
            ),
            (br#"{"inputs": {"a": [1, 2], "b": [3]}}"#, "has 1 values"),
            (
                br#"{"inputs": [[1, 2]], "params": 3}"#,
                "params must be an object",
            ),
        ];
        for (body, want) in cases {
            let m = err(body, &f);
            assert!(m.contains(want), "{:?}: {m}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "{{\"instances\": {}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(err(deep.as_bytes(), &named()).contains("not valid JSON"));
    }

    #[test]
    fn too_many_values_are_refused_before_allocating() {
        let f = Features {
            n: MAX_VALUES,
            names: None,
        };
        let m = err(br#"{"instances": [[1], [2]]}"#, &f);
        assert!(m.contains("at most"), "{m}");
    }
}
