pub mod data;
pub mod rules;
