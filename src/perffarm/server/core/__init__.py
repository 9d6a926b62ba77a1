"""The leaf of the server: what every layer above may use, importing nothing above it.

Errors by kind (mapped to HTTP statuses and gRPC codes once, by each transport), secrets
hashing, the principal (who is calling), the visibility rule, paging cursors, UTC times.
"""
