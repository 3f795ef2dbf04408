pub mod conf_file;
pub mod config;
