//! The training objective of method.md §3. So far its loss terms ([`loss`]); the step that runs
//! teacher, eviction and the Jacobi student and combines them per preset comes next.

pub mod loss;

pub use loss::{codi_loss, cross_entropy, kv_loss, rho, Rho};
