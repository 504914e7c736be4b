//! `GET /admin/stream`: the console's live feed as Server-Sent Events.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::Response;
use axum::response::sse::Event;
use flash_sale_app::console::Snapshot;
use futures::Stream;
use tokio::sync::watch;

use crate::auth::Admin;
use crate::state::AppState;

/// Snapshots of every product of the online events (SSE events `snapshot`, data a
/// `ConsoleSnapshotDto`): stock per bucket, attempts per second by outcome, the
/// consistency flag. At most two a second, taken once per instance for every watcher;
/// with Redis the figures are the same on every instance.
#[utoipa::path(get, path = "/api/v1/admin/stream", tag = "admin", operation_id = "admin_stream",
    responses((status = 200, content_type = "text/event-stream",
               description = "`snapshot` events, each a ConsoleSnapshotDto as JSON, at most two a second",
               body = flash_sale_client::ConsoleSnapshotDto)),
    security(("bearer" = [])))]
pub(crate) async fn stream(State(state): State<AppState>, _: Admin) -> Response {
    super::event_stream(&state, events(state.exec.console.subscribe()))
}

fn events(snapshots: watch::Receiver<Snapshot>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((snapshots, true), |(mut snapshots, first)| async move {
        loop {
            // The latest snapshot at once (if there is one), then each new one.
            if !first {
                snapshots.changed().await.ok()?;
            }
            let latest = snapshots.borrow_and_update().clone();
            if let Some(json) = latest {
                let event = Event::default().event("snapshot").data(&*json);
                return Some((Ok(event), (snapshots, false)));
            }
            if first {
                return Some((
                    Ok(Event::default().comment("waiting for the first snapshot")),
                    (snapshots, false),
                ));
            }
        }
    })
}
