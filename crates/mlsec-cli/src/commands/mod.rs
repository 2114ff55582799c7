pub mod convert;
pub mod data;
pub mod drift;
pub mod env;
pub mod provenance;
pub mod rules;
pub mod scan;
pub mod sign;
