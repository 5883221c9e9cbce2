//! The commands: wiring config, store and the I/O modules together.
