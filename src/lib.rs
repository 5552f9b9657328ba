//! closte-operator: keeps WordPress multisite mapped domains registered as
//! Closte domain aliases. See DESIGN.md for the architecture.

pub mod api;
pub mod check;
pub mod closte;
pub mod controller;
pub mod domain;
pub mod fence;
pub mod index;
pub mod memory;
pub mod metrics;
pub mod plan;
pub mod probe;
pub mod selector;
pub mod shutdown;
pub mod sidecar;
pub mod simulate;
pub mod status;
pub mod telemetry;
pub mod tls;
