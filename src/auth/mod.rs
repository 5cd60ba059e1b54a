//! Identity: login identifiers, passwords, and (in later work) sessions and extractors.

pub mod identifier;
pub mod password;
