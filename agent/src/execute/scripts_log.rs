//! scripts_log (to be written)
