//! Integration tests for the filter parser, evaluator, SQL translator and PATCH engine,
//! built as one test binary. `mock` is the test schema registry (an `AttributeResolver`).

mod eval;
mod fixtures;
pub(crate) mod mock;
mod parse;
mod patch;
mod sql;
mod values;
