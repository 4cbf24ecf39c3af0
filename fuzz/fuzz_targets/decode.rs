//! `woodlot::format::decode` and `read_meta` on arbitrary bytes: they must return (an error or a
//! forest), never panic, abort or allocate without bound. Half the inputs get a valid checksum
//! written over them, so the fuzzer reaches the meta, payload and tree checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use woodlot::format::{decode, file_checksum, read_meta, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= HEADER_LEN && data[0] & 1 == 1 {
        let mut sealed = data.to_vec();
        if let Ok(sum) = file_checksum(&sealed) {
            sealed[32..64].copy_from_slice(&sum);
            check(&sealed);
        }
    }
});

fn check(bytes: &[u8]) {
    let _ = read_meta(bytes);
    if let Ok((forest, meta)) = decode(bytes) {
        // Whatever decodes must be usable: predict on a row and encode it again.
        let row = vec![0.5f64; forest.n_features as usize];
        let x = ndarray::ArrayView2::from_shape((1, row.len()), &row);
        if let Ok(x) = x {
            let _ = forest.predict_proba(x, 1);
        }
        let again = woodlot::format::encode(&forest, &meta.estimator).expect("re-encode");
        let _ = decode(&again).expect("a re-encoded forest decodes");
    }
}
