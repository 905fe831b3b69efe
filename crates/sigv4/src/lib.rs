//! SigV4 verification. (being written)
