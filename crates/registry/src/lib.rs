//! ECR domain (being written)
