use core::time::Duration;

use super::Instant;

const MAX: Instant = Instant::from_nanos(u64::MAX);

#[test]
fn arithmetic_with_durations() {
    let t = Instant::from_nanos(1_000);
    assert_eq!(t + Duration::from_nanos(500), Instant::from_nanos(1_500));
    assert_eq!(t - Duration::from_nanos(400), Instant::from_nanos(600));
    assert_eq!(t.checked_add(Duration::from_secs(2)), Some(Instant::from_nanos(2_000_001_000)));
    assert_eq!(t.checked_sub(Duration::from_nanos(1_000)), Some(Instant::from_nanos(0)));
    let mut u = t;
    u += Duration::from_micros(3);
    assert_eq!(u.as_nanos(), 4_000);
    u -= Duration::from_nanos(4_000);
    assert_eq!(u, Instant::default());
}

#[test]
fn durations_between_instants() {
    let (a, b) = (Instant::from_nanos(10), Instant::from_nanos(2_000_000_010));
    assert_eq!(b - a, Duration::from_secs(2));
    assert_eq!(b.duration_since(a), Duration::from_secs(2));
    assert_eq!(b.checked_duration_since(a), Some(Duration::from_secs(2)));
    // The wrong way round is zero (or None), never a panic.
    assert_eq!(a - b, Duration::ZERO);
    assert_eq!(a.duration_since(b), Duration::ZERO);
    assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    assert_eq!(a.checked_duration_since(b), None);
    assert_eq!(MAX - Instant::from_nanos(0), Duration::from_nanos(u64::MAX));
}

#[test]
fn arithmetic_saturates_at_both_ends() {
    let near_end = Instant::from_nanos(u64::MAX - 5);
    assert_eq!(near_end.checked_add(Duration::from_nanos(6)), None);
    assert_eq!(near_end + Duration::from_nanos(6), MAX);
    assert_eq!(near_end + Duration::MAX, MAX);
    assert_eq!(Instant::from_nanos(0) + Duration::MAX, MAX, "a duration past u64 nanoseconds saturates too");
    assert_eq!(Instant::from_nanos(0).checked_add(Duration::MAX), None);
    let mut m = near_end;
    m += Duration::from_secs(1);
    assert_eq!(m, MAX);

    let start = Instant::from_nanos(5);
    assert_eq!(start.checked_sub(Duration::from_nanos(6)), None);
    assert_eq!(start - Duration::from_nanos(6), Instant::from_nanos(0));
    assert_eq!(MAX - Duration::MAX, Instant::from_nanos(0));
    assert_eq!(MAX.checked_sub(Duration::MAX), None);
    let mut z = start;
    z -= Duration::from_secs(1);
    assert_eq!(z.as_nanos(), 0);
}

#[test]
fn order_equality_and_debug() {
    let (a, b) = (Instant::from_nanos(1), Instant::from_nanos(2));
    assert!(a < b);
    assert_eq!(a, Instant::from_nanos(1));
    assert_ne!(a, b);
    assert_eq!(core::cmp::max(a, b), b);
    let mut set = alloc::collections::BTreeSet::new();
    set.extend([b, a, b]);
    assert_eq!(set.into_iter().collect::<alloc::vec::Vec<_>>(), [a, b]);
    assert_eq!(alloc::format!("{:?}", Instant::from_nanos(1_500_000_000)), "Instant(1.5s)");
}
