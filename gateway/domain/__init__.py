"""The pure core: no I/O, the clock is passed in."""
