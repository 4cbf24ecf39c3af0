//! The store's record parsers (manifests, events, probe sets) on arbitrary bytes: an error or
//! a record, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use woodlot::store::events::Event;
use woodlot::store::manifest::Manifest;
use woodlot::store::probe::ProbeSet;

fuzz_target!(|data: &[u8]| {
    let n = data.first().copied().unwrap_or(1) as u64;
    let _ = Manifest::parse(data, n);
    let _ = Event::parse(data, n);
    let _ = ProbeSet::decode(data);
});
