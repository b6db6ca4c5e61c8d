//! Helpers shared by the integration tests of acta-ledger.
//!
//! Each test binary includes this module with `mod common;` and uses only part of it.
#![allow(dead_code, unreachable_pub)]

pub mod forge;
pub mod rfc9162;
