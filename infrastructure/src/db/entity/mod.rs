//! sea-orm entities, one per table. Rows only: conversion to domain types lives next
//! to the gateways.

pub mod event;
pub mod inventory_ledger;
pub mod order;
pub mod placement;
pub mod product;
pub mod purchase_quota;
pub mod stock_bucket;
