//! Rendering: pure functions of the status model, "now" and the rules that
//! produce what people read — the digest and warning emails (`email`), the
//! `status` table (`status`) and push events (`push`). Everything taken
//! from a received email or a tracking provider is escaped where it lands
//! in HTML and kept to one line where it lands in a title or header.

pub mod calendar;
pub mod dashboard;
pub mod email;
pub mod metrics;
pub mod push;
pub mod status;
pub mod text;

pub use calendar::render_calendar;
pub use email::{esc, render_digest, render_warning, render_warnings, RenderedEmail};
pub use status::render_status_table;
