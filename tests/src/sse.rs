//! Reading a `text/event-stream` answer in tests: one event at a time, with a time
//! limit, over a plain reqwest response.

use std::time::Duration;

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `event:` name (`message` when none).
    pub name: String,
    /// Its `data:` lines, joined by newlines.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// An open event stream.
pub struct SseStream {
    response: reqwest::Response,
    buffer: String,
}

/// What came instead of an event.
#[derive(Debug, PartialEq, Eq)]
pub enum SseEnd {
    /// The server closed the stream.
    Closed,
    /// Nothing within the time limit.
    TimedOut,
}

impl SseStream {
    /// Opens `url` with `token` (if any); the status and content type are the caller's
    /// to check with [`SseStream::response`] — or the error answer's.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn open(url: &str, token: Option<&str>) -> Result<Self, (u16, String)> {
        let mut request = reqwest::Client::new()
            .get(url)
            .header("Accept", "text/event-stream");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the service answers");
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err((status, response.text().await.unwrap_or_default()));
        }
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The answer's head.
    pub fn response(&self) -> &reqwest::Response {
        &self.response
    }

    /// The next event (comments and keep-alives skipped) within `limit`.
    ///
    /// # Panics
    /// On a broken connection.
    pub async fn next(&mut self, limit: Duration) -> Result<SseEvent, SseEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Ok(event);
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Err(SseEnd::TimedOut),
                Ok(Ok(None)) => return Err(SseEnd::Closed),
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8 events")),
                Ok(Err(e)) => panic!("the event stream broke: {e}"),
            }
        }
    }

    /// Events until one satisfies `wanted` (returned), within `limit` in all.
    ///
    /// # Panics
    /// When none does in time, or the stream closes first.
    pub async fn until(
        &mut self,
        limit: Duration,
        mut wanted: impl FnMut(&SseEvent) -> bool,
    ) -> SseEvent {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) => {}
                Err(end) => panic!("no such event within {limit:?}: {end:?}"),
            }
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut name = "message".to_owned();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            value.trim().clone_into(&mut name);
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (!data.is_empty()).then(|| SseEvent {
        name,
        data: data.join("\n"),
    })
}
