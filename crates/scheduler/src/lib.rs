//! ECS task placement (being written).
