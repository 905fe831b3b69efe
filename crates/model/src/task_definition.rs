//! ECS task definitions: wire shapes and validation as ECS does it (being written).
