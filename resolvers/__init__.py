"""The use cases: what each query and mutation does, DataLoaders and pagination.

Resolvers take and return domain values and raise domain errors; they know nothing of the
GraphQL types or of HTTP (only Strawberry's DataLoader utility is borrowed).
"""
