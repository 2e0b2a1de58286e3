//! The workload driver: YCSB-style workloads over the wire client with HdrHistogram latencies.
//! Not yet built. It is a client only and never links storage or daemon.
