//! The bad-input corpus: requests across every route that must be refused with a 4xx in the
//! SPEC error shape, writing and sending nothing.
