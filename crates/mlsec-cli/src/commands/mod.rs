pub mod convert;
pub mod data;
pub mod provenance;
pub mod rules;
pub mod scan;
pub mod sign;
