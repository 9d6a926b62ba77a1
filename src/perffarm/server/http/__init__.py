"""The HTTP transport: routers (one module per resource), the dependencies every route uses
(a connection, the principal, the permission it needs), middleware, and the handlers that
turn domain errors into HTTP answers once."""
