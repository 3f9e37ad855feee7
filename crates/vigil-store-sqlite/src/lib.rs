//! vigil-store-sqlite
