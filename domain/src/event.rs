//! Sale events (the "activity"): a window in time, a status and an ordering strategy.

use chrono::{DateTime, Utc};

use crate::error::{ErrorKind, ValidationErrors};
use crate::strategy::Strategy;
use crate::text::{Description, Title};

/// An event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub i64);

/// Lifecycle status: `draft → online ⇄ offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Being prepared; invisible to buyers.
    Draft,
    /// Visible; sells inside its window.
    Online,
    /// Taken off sale; invisible to buyers.
    Offline,
}

impl EventStatus {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Online, Self::Offline]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// The sale window `[starts_at, ends_at)`; `ends_at` is after `starts_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleWindow {
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
}

impl SaleWindow {
    /// Checks the order of the two times; the violation names `field`.
    pub fn new(
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        field: &str,
    ) -> Result<Self, ValidationErrors> {
        if ends_at > starts_at {
            Ok(Self { starts_at, ends_at })
        } else {
            Err(ValidationErrors::single(field, "must be after starts_at"))
        }
    }

    /// Opening time.
    pub fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }

    /// Closing time (exclusive).
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.ends_at
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// A rule about events was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Input that breaks a rule.
    #[error(transparent)]
    Validation(#[from] ValidationErrors),
    /// An online event cannot be edited; take it offline first.
    #[error("an online event cannot be edited; take it offline first")]
    EditWhileOnline,
    /// An event needs at least one product to go online.
    #[error("an event needs at least one product to go online")]
    NoProducts,
    /// The status cannot change this way.
    #[error("an event cannot go from {} to {}", from.as_str(), to.as_str())]
    IllegalTransition {
        /// Current status.
        from: EventStatus,
        /// Wanted status.
        to: EventStatus,
    },
}

impl EventError {
    /// The failure's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(_) => ErrorKind::Validation,
            Self::EditWhileOnline | Self::NoProducts | Self::IllegalTransition { .. } => {
                ErrorKind::InvalidState
            }
        }
    }
}

/// A checked request to create an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Description,
    /// Sale window.
    pub window: SaleWindow,
    /// Ordering strategy; `None` follows the configuration.
    pub strategy: Option<Strategy>,
}

impl NewEvent {
    /// Checks every field, reporting all violations together.
    pub fn new(
        title: &str,
        description: Option<&str>,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        strategy: Option<Strategy>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = errors.collect(Title::parse("title", title));
        let description =
            errors.collect(Description::parse("description", description.unwrap_or("")));
        let window = errors.collect(SaleWindow::new(starts_at, ends_at, "ends_at"));
        match (title, description, window) {
            (Some(title), Some(description), Some(window)) if errors.is_empty() => Ok(Self {
                title,
                description,
                window,
                strategy,
            }),
            _ => Err(errors),
        }
    }
}

/// Changes to an event; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New opening time.
    pub starts_at: Option<DateTime<Utc>>,
    /// New closing time.
    pub ends_at: Option<DateTime<Utc>>,
    /// `Some(None)` follows the configuration again.
    pub strategy: Option<Option<Strategy>>,
}

/// A sale event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Id.
    pub id: EventId,
    /// Title.
    pub title: Title,
    /// Description.
    pub description: Description,
    /// Sale window.
    pub window: SaleWindow,
    /// Ordering strategy; `None` follows the configuration.
    pub strategy: Option<Strategy>,
    /// Lifecycle status.
    pub status: EventStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Event {
    /// Applies `changes`; refused while online. All violations are reported together.
    pub fn edit(&mut self, changes: &EventChanges, now: DateTime<Utc>) -> Result<(), EventError> {
        if self.status == EventStatus::Online {
            return Err(EventError::EditWhileOnline);
        }
        let mut errors = ValidationErrors::new();
        let title = changes
            .title
            .as_deref()
            .and_then(|t| errors.collect(Title::parse("title", t)));
        let description = changes
            .description
            .as_deref()
            .and_then(|d| errors.collect(Description::parse("description", d)));
        let field = if changes.ends_at.is_some() {
            "ends_at"
        } else {
            "starts_at"
        };
        let window = errors.collect(SaleWindow::new(
            changes.starts_at.unwrap_or(self.window.starts_at),
            changes.ends_at.unwrap_or(self.window.ends_at),
            field,
        ));
        if !errors.is_empty() {
            return Err(errors.into());
        }
        if let Some(title) = title {
            self.title = title;
        }
        if let Some(description) = description {
            self.description = description;
        }
        if let Some(window) = window {
            self.window = window;
        }
        if let Some(strategy) = changes.strategy {
            self.strategy = strategy;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Puts the event on sale; it needs at least one product. Idempotent.
    pub fn go_online(&mut self, product_count: u64, now: DateTime<Utc>) -> Result<(), EventError> {
        if product_count == 0 {
            return Err(EventError::NoProducts);
        }
        if self.status != EventStatus::Online {
            self.status = EventStatus::Online;
            self.updated_at = now;
        }
        Ok(())
    }

    /// Takes the event off sale. Idempotent; a draft was never on sale.
    pub fn go_offline(&mut self, now: DateTime<Utc>) -> Result<(), EventError> {
        match self.status {
            EventStatus::Draft => Err(EventError::IllegalTransition {
                from: EventStatus::Draft,
                to: EventStatus::Offline,
            }),
            EventStatus::Offline => Ok(()),
            EventStatus::Online => {
                self.status = EventStatus::Offline;
                self.updated_at = now;
                Ok(())
            }
        }
    }

    /// Whether buyers may see it.
    pub fn is_visible(&self) -> bool {
        self.status == EventStatus::Online
    }

    /// Whether it sells at `now`: online and inside its window.
    pub fn is_on_sale(&self, now: DateTime<Utc>) -> bool {
        self.is_visible() && self.window.contains(now)
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
