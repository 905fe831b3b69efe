//! HTTP edge (being written)
