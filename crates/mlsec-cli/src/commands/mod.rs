pub mod data;
pub mod rules;
pub mod scan;
