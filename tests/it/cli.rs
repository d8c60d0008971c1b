//! The admin CLI through the built binary.
