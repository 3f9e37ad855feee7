//! The HTTP API, end to end through the real router and a real store. Every suite that
//! touches data runs on SQLite always and on PostgreSQL when `VIGIL_TEST_PG_URL` is set.

mod apps;
mod audit;
mod auth;
mod bundles;
mod edge;
mod instances;
mod ioc;
mod isolation;
mod logs;
mod plans;
mod risks;
mod support;
mod sync;
mod throttle;
