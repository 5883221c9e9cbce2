//! Rendering: pure functions of the status model, "now" and the rules that
//! produce what people read — the digest and warning emails (`email`) and
//! the `status` table (`status`). Everything taken from a received email or
//! a tracking provider is escaped where it lands in HTML.

pub mod calendar;
pub mod dashboard;
pub mod email;
pub mod metrics;
pub mod status;
pub mod text;

pub use calendar::render_calendar;
pub use email::{esc, render_digest, render_warning, render_warnings, RenderedEmail};
pub use status::render_status_table;
