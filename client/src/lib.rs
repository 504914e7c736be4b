//! The flash-sale wire contract.
//!
//! Everything a caller of the HTTP API needs and nothing the server keeps to itself:
//! commands (`…Cmd`), queries (`…Qry`), answers (`…Dto`), the error envelope with its
//! stable [`ErrorCode`]s, and [`FlashSaleClient`], a typed HTTP client. The types derive
//! `serde` for the wire, `validator` for field rules, and `utoipa` for the OpenAPI
//! document. No web framework lives here.
#![forbid(unsafe_code)]

mod check;
pub mod console;
pub mod error;
pub mod event;
pub mod http;
pub mod order;
pub mod page;
pub mod product;
mod serde_util;

pub use check::Checked;
pub use console::{AttemptsDto, ConsoleSnapshotDto, ProductPulseDto};
pub use error::{ErrorBody, ErrorCode, FieldErrorDto};
pub use event::{
    EventCreateCmd, EventDetailDto, EventDto, EventListQry, EventPatchCmd, EventStatusDto,
    StrategyDto,
};
pub use http::{ClientError, FlashSaleClient, PlaceOrderAnswer, RawResponse};
pub use order::{
    AdminOrderListQry, OrderBucketDto, OrderDto, OrderPayCmd, OrderPlaceCmd, OrderStatusDto,
    PlacementDto, PlacementErrorDto, PlacementStatusDto,
};
pub use page::{PageDto, PageQry};
pub use product::{
    BucketInventoryDto, InventoryDto, LedgerEntryDto, ProductBucketsCmd, ProductCreateCmd,
    ProductDto, ProductPatchCmd, ProductStatusDto, ProductStockCmd, ReconcileDto,
};
