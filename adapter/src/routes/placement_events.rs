//! `GET /placements/{id}/events`: a buyer's async placement, pushed as Server-Sent
//! Events — its state now, then each change, closed once it resolves.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::response::sse::Event;
use flash_sale_app::Caller;
use flash_sale_client::{PlacementDto, PlacementStatusDto};
use futures::Stream;
use tokio::time::Instant;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

/// How often the stream looks at the placement again.
const POLL: Duration = Duration::from_millis(200);
/// How long a stream lasts at most: every placement resolves within 60 s, so one still
/// queued after this has a problem the buyer will see by polling or reconnecting.
const LIMIT: Duration = Duration::from_secs(90);

/// The caller's placement as it changes (SSE): one `queued` event, then `succeeded`
/// (with `order_id`) or `failed` (with `error`), each carrying the placement as JSON.
#[utoipa::path(get, path = "/api/v1/placements/{id}/events", tag = "buyer", operation_id = "placement_events",
    params(("id" = String, Path, description = "placement id")),
    responses((status = 200, content_type = "text/event-stream",
               description = "events named after the status (`queued`, `succeeded`, `failed`), each with the placement as JSON; closed once it resolves"),
              (status = 404, body = flash_sale_client::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn placement_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = state.exec.placement_get.execute(&caller, &id).await?;
    Ok(super::event_stream(
        &state,
        changes(state.clone(), caller, id, now),
    ))
}

enum Watch {
    /// The state to send first.
    First(PlacementDto),
    /// Sent this; waiting for a change since `since`.
    Sent {
        last: PlacementDto,
        since: Instant,
    },
    Done,
}

fn changes(
    state: AppState,
    caller: Caller,
    id: String,
    first: PlacementDto,
) -> impl Stream<Item = Result<Event, std::convert::Infallible>> {
    futures::stream::unfold(Watch::First(first), move |watch| {
        let (state, caller, id) = (state.clone(), caller.clone(), id.clone());
        async move {
            let (placement, since) = match watch {
                Watch::Done => return None,
                Watch::First(placement) => (placement, Instant::now()),
                Watch::Sent { last, since } => (
                    next_change(&state, &caller, &id, &last, since).await?,
                    since,
                ),
            };
            let event = event(&placement);
            let next = if placement.status == PlacementStatusDto::Queued {
                Watch::Sent {
                    last: placement,
                    since,
                }
            } else {
                Watch::Done
            };
            Some((Ok(event), next))
        }
    })
}

/// The placement once it differs from `last`; `None` when the stream should end (the
/// limit passed, the placement is gone).
async fn next_change(
    state: &AppState,
    caller: &Caller,
    id: &str,
    last: &PlacementDto,
    since: Instant,
) -> Option<PlacementDto> {
    loop {
        tokio::time::sleep(POLL).await;
        if since.elapsed() > LIMIT {
            return None;
        }
        match state.exec.placement_get.execute(caller, id).await {
            Ok(now) if now != *last => return Some(now),
            Ok(_) => {}
            Err(flash_sale_app::AppError::NotFound(_)) => return None,
            // A backend that does not answer now may answer at the next look.
            Err(e) => {
                tracing::debug!(error = %flash_sale_app::error::Chain(&e), "placement stream: a look failed");
            }
        }
    }
}

fn event(placement: &PlacementDto) -> Event {
    let name = match placement.status {
        PlacementStatusDto::Queued => "queued",
        PlacementStatusDto::Succeeded => "succeeded",
        PlacementStatusDto::Failed => "failed",
    };
    Event::default()
        .event(name)
        .json_data(placement)
        .unwrap_or_else(|_| Event::default().event(name))
}
