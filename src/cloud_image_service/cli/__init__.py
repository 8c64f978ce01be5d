"""`cloud-image-service`: the operator's command line (serve, init, worker, sweep, fsck, keys)."""
