//! bundle (to be written)
