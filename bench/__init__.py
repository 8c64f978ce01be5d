"""Benchmark of Cloud Image Service over real HTTP: `python -m bench [options]`.

By default it starts SeaweedFS (S3), DynamoDB Local and the service as child processes, so
that the service's CPU time is its own (the `embedded` backend would run moto inside it).
With `--url` it drives a service that is already running instead. Its scenarios, one module
each under `bench/scenarios/`, run in this order: variants per second and peak memory of the
image pipelines, in child processes before any store starts (`variants`; run alone, it
starts nothing), GET /images?user_id=U&limit=50 with a small and a large table (`listing`),
POST /images/upload at several concurrencies (`presign`), the full upload flow in flows/s
(`flow`), GET /health (`health`), POST /images/{id}/complete alone (`verification`),
`cis upload` (`cli_upload`), a multipart upload (`multipart`), the service CPU per request
of upload, download and list on services of its own, `aws` and `embedded` (`cpu`), and last
the time to a 503 while a store is frozen (`stall`). It prints a
markdown report to stdout (progress goes to stderr) and can write the same results as JSON.
Authentication is on, as in production: the managed service verifies HS256 JWTs (a new
secret each run) and every API request carries its user's token.

    .venv/bin/python -m bench --quick
    .venv/bin/python -m bench --quick --scenarios presign,stall
    .venv/bin/python -m bench --quick --scenarios variants
    .venv/bin/python -m bench --quick --scenarios cpu
    .venv/bin/python -m bench --json bench/results.json
"""
