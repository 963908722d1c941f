//! A NATS client on `std::net` with no async runtime (work in progress).
