"""Everything that touches the outside world, each behind a port of `gateway`."""
