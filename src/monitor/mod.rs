//! Token lifecycle monitoring. For now: the usage recorder, which takes the guard's
//! per-request attribution off the request path and writes it to the store in batches.

pub mod usage;
