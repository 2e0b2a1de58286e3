//! Waiting on an `event_listener::Event` for a condition of single-threaded state: check, and
//! only if it does not hold, register a listener, check again (a notification between the first
//! check and the registration would otherwise be missed) and wait. A condition that holds costs
//! no listener (registering one takes the event's lock).

/// Returns once `ready()` holds, waiting for `event` between checks. Whoever makes it hold must
/// notify `event`.
pub(crate) async fn until(event: &event_listener::Event, mut ready: impl FnMut() -> bool) {
    loop {
        if ready() {
            return;
        }
        let notified = event.listen();
        if ready() {
            return;
        }
        notified.await;
    }
}
