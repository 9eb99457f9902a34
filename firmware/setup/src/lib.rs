//! The technician setup shell (being written).
