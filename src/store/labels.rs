//! Class labels as the store compares them.
//!
//! Each version knows its classes as JSON values from its model file (`[0, 1, 2]`,
//! `["cat", "dog"]`, `[false, true]`); evaluation labels arrive from Python as numbers or strings.
//! Compare maps both onto one sorted *label universe* so confusion matrices of different
//! versions line up and a label a version never saw counts as an error for that version (its
//! prediction can never match it). Numbers compare by value, as numpy does (`1 == 1.0 == True`);
//! strings only equal strings.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use crate::error::{Result, WoodlotError};

/// One class label.
#[derive(Debug, Clone)]
pub enum Label {
    /// A numeric (or boolean) label.
    Num(f64),
    /// A string label.
    Str(String),
}

/// Evaluation labels as they arrive: all numbers or all strings.
#[derive(Debug, Clone)]
pub enum Labels {
    /// Numeric labels.
    Num(Vec<f64>),
    /// String labels.
    Str(Vec<String>),
}

impl Labels {
    /// Number of labels.
    pub fn len(&self) -> usize {
        match self {
            Labels::Num(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label `i`.
    pub fn get(&self, i: usize) -> Label {
        match self {
            Labels::Num(v) => Label::Num(v[i]),
            Labels::Str(v) => Label::Str(v[i].clone()),
        }
    }
}

/// A hashable identity for a label (numbers by canonical value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LabelKey {
    Num(u64),
    Str(String),
}

impl Label {
    /// A label from a JSON class value.
    pub fn from_json(v: &Value) -> Result<Self> {
        match v {
            Value::Number(n) => n.as_f64().map(Label::Num).ok_or_else(|| {
                WoodlotError::corrupt(format!("class label {n} is not a number we can compare"))
            }),
            Value::Bool(b) => Ok(Label::Num(if *b { 1.0 } else { 0.0 })),
            Value::String(s) => Ok(Label::Str(s.clone())),
            other => Err(WoodlotError::corrupt(format!(
                "class label {other} is not a number or a string"
            ))),
        }
    }

    /// The label as JSON (integral numbers as integers).
    pub fn to_json(&self) -> Value {
        match self {
            Label::Num(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Value::from(*x as i64),
            Label::Num(x) => Value::from(*x),
            Label::Str(s) => Value::from(s.clone()),
        }
    }

    /// The label as text, for table headers and keys.
    pub fn display(&self) -> String {
        match self.to_json() {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    fn key(&self) -> LabelKey {
        match self {
            Label::Num(x) => LabelKey::Num(if *x == 0.0 { 0 } else { x.to_bits() }),
            Label::Str(s) => LabelKey::Str(s.clone()),
        }
    }

    /// Total order: numbers (by value) before strings (by bytes).
    pub fn order(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Label::Num(a), Label::Num(b)) => a.total_cmp(b),
            (Label::Num(_), Label::Str(_)) => Ordering::Less,
            (Label::Str(_), Label::Num(_)) => Ordering::Greater,
            (Label::Str(a), Label::Str(b)) => a.cmp(b),
        }
    }
}

/// Most distinct labels in `y` that no compared version knows (each is an error for every
/// version; beyond this, `y` is not class labels).
pub const MAX_UNKNOWN_LABELS: usize = 256;

/// Most labels in a universe (confusion matrices are this squared, per version).
pub const MAX_UNIVERSE: usize = 4096;

/// The sorted union of every label seen, with a lookup from label to index.
#[derive(Debug, Clone)]
pub struct Universe {
    labels: Vec<Label>,
    index: HashMap<LabelKey, u32>,
}

impl Universe {
    /// Builds the universe of the evaluation labels and every version's classes.
    pub fn new<'a>(y: &Labels, classes: impl IntoIterator<Item = &'a [Label]>) -> Result<Self> {
        let mut all: Vec<Label> = Vec::new();
        let mut seen: HashMap<LabelKey, ()> = HashMap::new();
        fn add(all: &mut Vec<Label>, seen: &mut HashMap<LabelKey, ()>, l: Label) {
            if seen.insert(l.key(), ()).is_none() {
                all.push(l);
            }
        }
        match y {
            Labels::Num(v) => {
                for (i, x) in v.iter().enumerate() {
                    if !x.is_finite() {
                        return Err(WoodlotError::input(format!(
                            "y[{i}] is {x}; labels must be finite"
                        )));
                    }
                    add(&mut all, &mut seen, Label::Num(*x));
                }
            }
            Labels::Str(v) => v
                .iter()
                .for_each(|s| add(&mut all, &mut seen, Label::Str(s.clone()))),
        }
        let n_from_y = all.len();
        let mut known: HashMap<LabelKey, ()> = HashMap::new();
        for cs in classes {
            for c in cs {
                known.insert(c.key(), ());
                add(&mut all, &mut seen, c.clone());
            }
        }
        // Labels no version knows count as errors, which is right for a few new classes; many
        // of them mean y is not class labels (a continuous target passed by mistake), and each
        // confusion matrix is |universe|^2 counts, so refuse before sizing anything from it.
        let unknown: Vec<&Label> = all[..n_from_y]
            .iter()
            .filter(|l| !known.contains_key(&l.key()))
            .collect();
        if unknown.len() > MAX_UNKNOWN_LABELS {
            let shown: Vec<String> = unknown.iter().take(5).map(|l| l.display()).collect();
            return Err(WoodlotError::input(format!(
                "y has {} distinct values that no compared version has as a class (e.g. {}); \
                 compare needs the class labels the models were fitted on (at most \
                 {MAX_UNKNOWN_LABELS} unseen labels), not a continuous target",
                unknown.len(),
                shown.join(", ")
            )));
        }
        if all.len() > MAX_UNIVERSE {
            return Err(WoodlotError::input(format!(
                "y and the compared versions have {} distinct labels in all; compare handles at \
                 most {MAX_UNIVERSE} (each confusion matrix is that number squared)",
                all.len()
            )));
        }
        all.sort_by(|a, b| a.order(b));
        let index = all
            .iter()
            .enumerate()
            .map(|(i, l)| (l.key(), i as u32))
            .collect();
        Ok(Self { labels: all, index })
    }

    /// The labels, sorted.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The index of a label that is in the universe.
    pub fn code(&self, l: &Label) -> Option<u32> {
        self.index.get(&l.key()).copied()
    }

    /// The evaluation labels as universe codes.
    pub fn encode(&self, y: &Labels) -> Vec<u32> {
        (0..y.len())
            .map(|i| self.code(&y.get(i)).expect("y is in the universe"))
            .collect()
    }
}

/// A version's classes (JSON array from its metadata) as labels.
pub fn classes_from_json(classes: &Value, n_classes: usize) -> Result<Vec<Label>> {
    let arr = classes
        .as_array()
        .ok_or_else(|| WoodlotError::corrupt("the model's classes are not a list"))?;
    if arr.len() != n_classes {
        return Err(WoodlotError::corrupt(format!(
            "the model lists {} classes but predicts {n_classes}",
            arr.len()
        )));
    }
    arr.iter().map(Label::from_json).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_strings_by_text() {
        let y = Labels::Num(vec![2.0, 0.0, 1.0]);
        let a = classes_from_json(&json!([0, 1, 2]), 3).unwrap();
        let b = classes_from_json(&json!([false, true]), 2).unwrap();
        let u = Universe::new(&y, [a.as_slice(), b.as_slice()]).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u.encode(&y), vec![2, 0, 1]);
        assert_eq!(u.code(&Label::Num(1.0)), Some(1));
        assert_eq!(u.labels()[2].to_json(), json!(2));

        let ys = Labels::Str(vec!["dog".into(), "cat".into()]);
        let c = classes_from_json(&json!(["cat", "dog", "eel"]), 3).unwrap();
        let u = Universe::new(&ys, [c.as_slice(), a.as_slice()]).unwrap();
        let names: Vec<_> = u.labels().iter().map(Label::display).collect();
        assert_eq!(names, ["0", "1", "2", "cat", "dog", "eel"]);
        assert_eq!(u.encode(&ys), vec![4, 3]);
    }

    #[test]
    fn bad_labels_are_errors() {
        assert!(Universe::new(&Labels::Num(vec![f64::NAN]), []).is_err());
        assert!(classes_from_json(&json!({"a": 1}), 1).is_err());
        assert!(classes_from_json(&json!([0, 1]), 3).is_err());
        assert!(classes_from_json(&json!([[0]]), 1).is_err());
    }
}
