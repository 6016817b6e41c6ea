"""A compiled path for read documents seen before.

Strawberry (graphql-core) executes every field through the generic machinery: for a page of
100 trees that is some 1,000 resolver calls, which dominates the time of a read. This package
compiles a validated document once into a plan of plain functions that call the same use cases
(`resolvers.*`) and write the response directly. It serves only the success case of the read
fields it knows; anything else (mutations, unknown fields, fragments, directives, errors of any
kind) falls back to the full Strawberry execution, which stays the reference. A differential
test runs generated documents through both and requires identical responses.
"""
