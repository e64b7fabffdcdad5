//! How the registry's records are written out, for the HTTP answers, export and import alike
//! (nothing here depends on the HTTP layer): JSON written straight into a buffer, the Device
//! object as JSON and as CSV, page cursors.

pub mod cursor;
pub mod device;
pub mod json;
