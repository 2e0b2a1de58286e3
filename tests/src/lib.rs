//! End-to-end tests against the real `nacred` binary, a real Kafka broker and real third-party
//! clients. Empty until the daemon exists; the storage engine's own suites live in `storage/tests`.
