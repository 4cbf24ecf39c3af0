//! Scoring requests as `text/csv`, the other input of MLflow's scoring server: a header row of
//! column names, then one row of numbers per record (RFC 4180, parsed by the `csv` crate, so
//! quoted names with commas or quotes work).
//!
//! MLflow reads the body with `pandas.read_csv`, so this reads it the way pandas does: the
//! first row always names the columns, an empty field or one of pandas' default missing-value
//! markers (`NA`, `NaN`, `null`, ...) is a missing value (NaN, routed as the forest learned),
//! and anything else must be a finite number. The names are checked as the estimator checks
//! them ([`check_columns`]): the fitted names in the fitted order, or only their number for a
//! model fitted without names. Pure and without I/O, like [`input`](super::input).

use ndarray::Array2;

use crate::error::Result;
use crate::serve::input::{bad, check_columns, check_size, Features, MAX_VALUES};

/// pandas' default `na_values`: fields `read_csv` turns into NaN.
const MISSING: [&str; 18] = [
    "", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>", "#N/A",
    "#N/A N/A", "#NA", "1.#IND", "1.#QNAN", "-1.#IND",
];

/// Parses a CSV scoring request for a model with features `f`.
pub fn parse_csv(body: &[u8], f: &Features) -> Result<Array2<f64>> {
    parse_limited(body, f, MAX_VALUES)
}

/// [`parse_csv`] with the limit on values as a parameter (the tests use a small one).
fn parse_limited(body: &[u8], f: &Features, max_values: usize) -> Result<Array2<f64>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(
            "the request body is empty; send a header row of column names, then one row of \
             values per line",
        ));
    }
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|e| bad(format!("the CSV header row is malformed: {e}")))?
        .clone();
    let names: Vec<String> = header.iter().map(str::to_string).collect();
    check_columns(Some(&names), f)?;
    let mut values: Vec<f64> = Vec::new();
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(bad(format!("row {rows}: the CSV is malformed: {e}"))),
        }
        // A blank line in the middle is a row without values; pandas skips blank lines.
        if record.len() == 1 && record[0].trim().is_empty() && f.n != 1 {
            continue;
        }
        if record.len() != f.n {
            return Err(bad(format!(
                "row {rows} has {} values; the model takes {} features",
                record.len(),
                f.n
            )));
        }
        if values.len() + f.n > max_values {
            return Err(bad(format!(
                "the request holds more than {max_values} values; send fewer rows per request"
            )));
        }
        for (j, field) in record.iter().enumerate() {
            values.push(value(field, rows, &names[j])?);
        }
        rows += 1;
    }
    check_size(rows, f.n)?;
    Array2::from_shape_vec((rows, f.n), values)
        .map_err(|e| bad(format!("could not shape the rows: {e}")))
}

fn value(field: &str, row: usize, column: &str) -> Result<f64> {
    let t = field.trim();
    if MISSING.contains(&t) {
        return Ok(f64::NAN);
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(bad(format!(
            "row {row}, column {column:?}: {t:?} is not a finite number"
        ))),
        Err(_) => Err(bad(format!(
            "row {row}, column {column:?}: expected a number or an empty field, got {t:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WoodlotError;

    fn named() -> Features {
        Features {
            n: 2,
            names: Some(vec!["a".into(), "b,c".into()]),
        }
    }

    fn err(body: &str, f: &Features) -> String {
        match parse_csv(body.as_bytes(), f) {
            Err(WoodlotError::InvalidInput(m)) => m,
            other => panic!("{body:?}: expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn rows_follow_a_header_of_names_with_quotes_and_missing_values() {
        let x = parse_csv(b"a,\"b,c\"\r\n1,2.5\n3, NA\n\n,4\n", &named()).unwrap();
        assert_eq!(x.shape(), &[3, 2]);
        assert_eq!((x[[0, 0]], x[[0, 1]], x[[1, 0]]), (1.0, 2.5, 3.0));
        assert!(x[[1, 1]].is_nan() && x[[2, 0]].is_nan() && x[[2, 1]] == 4.0);
        // A model fitted without names takes the columns by position, whatever their names.
        let x = parse_csv(b"p,q\n1,2\n", &Features { n: 2, names: None }).unwrap();
        assert_eq!(x, ndarray::array![[1.0, 2.0]]);
    }

    #[test]
    fn bad_csv_says_what_is_wrong() {
        let f = named();
        for (body, want) in [
            ("", "empty"),
            ("b,c,a\n1,2\n", "same order"),
            ("a\n1\n", "same order"),
            ("a,\"b,c\"\n", "no rows"),
            ("a,\"b,c\"\n1,2,3\n", "row 0 has 3 values"),
            ("a,\"b,c\"\n1,2\n1\n", "row 1 has 1 values"),
            ("a,\"b,c\"\n1,x\n", "expected a number"),
            ("a,\"b,c\"\n1,inf\n", "not a finite number"),
            ("a,\"b,c\"\n1,1e999\n", "not a finite number"),
        ] {
            let m = err(body, &f);
            assert!(m.contains(want), "{body:?}: {m}");
        }
        let m = err("p,q,r\n1,2,3\n", &Features { n: 2, names: None });
        assert!(m.contains("3 columns given"), "{m}");
    }

    #[test]
    fn too_many_values_are_refused() {
        let f = Features { n: 2, names: None };
        let body = format!("p,q\n{}", "1,2\n".repeat(3));
        assert!(parse_limited(body.as_bytes(), &f, 6).is_ok());
        match parse_limited(body.as_bytes(), &f, 5) {
            Err(WoodlotError::InvalidInput(m)) => assert!(m.contains("more than 5"), "{m}"),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
