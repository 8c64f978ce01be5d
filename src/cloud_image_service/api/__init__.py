"""HTTP layer: schemas, routes and error handlers."""
