//! Test cases run once per server build: `on_both_servers!(a, b)` in a module holding `fn a(version:
//! ServerVersion)` (and `ServerVersion` in scope) makes `current::a` and `old::a`; `on_both_servers_async!` does
//! the same for `async fn`s, as tokio tests. Shared by the test files written that way.

/// Blocking cases, once on the current server and once on the old one.
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod current {
            $(#[test] fn $name() { super::$name(super::ServerVersion::Current) })*
        }
        mod old {
            $(#[test] fn $name() { super::$name(super::ServerVersion::Old) })*
        }
    };
}

/// Async cases, once on the current server and once on the old one, each a tokio test.
#[allow(unused_macros)]
macro_rules! on_both_servers_async {
    ($($name:ident),* $(,)?) => {
        mod current {
            $(#[tokio::test] async fn $name() { super::$name(super::ServerVersion::Current).await })*
        }
        mod old {
            $(#[tokio::test] async fn $name() { super::$name(super::ServerVersion::Old).await })*
        }
    };
}
