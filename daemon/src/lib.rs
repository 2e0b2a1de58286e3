//! The `nacred` daemon and the `nacre` CLI: per-core shards composed over `nacre-storage`,
//! routing, TCP, RESP, Kafka consumers, the bulk linker, admin and metrics. Not yet built: the
//! daemon issue fills it in. Only this crate converts between wire types and storage types.
