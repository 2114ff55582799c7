pub mod convert;
pub mod data;
pub mod rules;
pub mod scan;
pub mod sign;
