//! The browser API over `kava`. Not written yet: tracked by the browser-demo issue.
