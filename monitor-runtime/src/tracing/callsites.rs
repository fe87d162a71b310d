//! The monitor callsite of each `tracing` callsite.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{PoisonError, RwLock};

use tracing_core::Metadata;

use crate::callsite::{Callsite, SpanKind};

/// The monitor callsite of a `tracing` callsite, made (and leaked) once:
/// `tracing` callsites are statics, so there are as many as the program has.
pub(super) fn callsite_of(metadata: &'static Metadata<'static>) -> &'static Callsite {
    // A few per thread, by address, so that most spans take no lock.
    type Near = [Cell<(usize, Option<&'static Callsite>)>; 16];
    thread_local!(static NEAR: Near = const { [const { Cell::new((0, None)) }; 16] });
    let key = metadata as *const Metadata<'static> as usize;
    let slot = ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize;
    if let Ok(Some(callsite)) = NEAR.try_with(|near| match near[slot].get() {
        (at, callsite) if at == key => callsite,
        _ => None,
    }) {
        return callsite;
    }
    let callsite = shared_callsite_of(metadata);
    let _ = NEAR.try_with(|near| near[slot].set((key, Some(callsite))));
    callsite
}

/// [`callsite_of`] from the map all threads share.
fn shared_callsite_of(metadata: &'static Metadata<'static>) -> &'static Callsite {
    type ByAddress = HashMap<usize, &'static Callsite, BuildHasherDefault<AddressHasher>>;
    static CALLSITES: RwLock<Option<ByAddress>> = RwLock::new(None);
    let key = metadata as *const Metadata<'static> as usize;
    if let Some(callsite) = CALLSITES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|map| map.get(&key))
    {
        return callsite;
    }
    let mut map = CALLSITES.write().unwrap_or_else(PoisonError::into_inner);
    map.get_or_insert_with(ByAddress::default)
        .entry(key)
        .or_insert_with(|| {
            let callsite = Callsite::new(
                metadata.name(),
                metadata.target(),
                metadata.target(),
                metadata.file().unwrap_or(""),
                metadata.line().unwrap_or(0),
                SpanKind::Tracing,
            );
            // A span's level is its callsite's: written by the writer, not
            // held by each span. (An event's has a column of its own.)
            let callsite = if metadata.is_span() {
                callsite.with_level(metadata.level().as_str())
            } else {
                callsite
            };
            Box::leak(Box::new(callsite))
        })
}

/// Hashes an address: one multiply, as keys are distinct static addresses
/// that no one chooses (SipHash's defence against chosen keys buys nothing).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}
