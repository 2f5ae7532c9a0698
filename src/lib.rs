//! Support code shared by the examples and the end-to-end tests of `cluster-client`.
