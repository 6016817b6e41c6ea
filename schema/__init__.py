"""The GraphQL surface: Strawberry types, inputs, enums, the Schema and the committed SDL."""
