"""Work off the request path: the event worker, the sweep, the consistency checker."""
