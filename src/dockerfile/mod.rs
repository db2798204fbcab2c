//! Dockerfiles: the parser (syntax → instructions with their positions) and
//! the variable expansion the builder applies per instruction. Planning
//! Dockerfile stages onto the step DAG builds on these.

pub mod expand;
pub mod frontend;
pub mod parse;
