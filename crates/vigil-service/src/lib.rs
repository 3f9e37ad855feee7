//! vigil-service
