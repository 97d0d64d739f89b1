//! Contract rules of SPEC.md that had no test: retention, expiry, Retry-After on a 500,
//! cursors bound to their list, strict URLs through the API, provisioning twice, and logs
//! that never carry a secret.
