//! Pagination: the query every list route takes and the list it answers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// Default page size when the query does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// `?page=&page_size=` of a list route.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Validate, IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct PageQry {
    /// 1-based page number (default 1).
    #[validate(range(min = 1, message = "must be at least 1"))]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    pub page: Option<u32>,
    /// Items per page, 1–100 (default 20).
    #[validate(range(min = 1, max = 100, message = "must be between 1 and 100"))]
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
}

impl PageQry {
    /// The page number, defaulted.
    pub fn page(&self) -> u32 {
        self.page.unwrap_or(1)
    }

    /// The page size, defaulted.
    pub fn page_size(&self) -> u32 {
        self.page_size.unwrap_or(DEFAULT_PAGE_SIZE)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PageDto<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// This page's number.
    pub page: u32,
    /// The page size asked for.
    pub page_size: u32,
    /// How many items all pages hold together.
    pub total: u64,
}

impl crate::check::Checked for PageQry {}
