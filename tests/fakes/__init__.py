"""Fakes of the gateway's ports, for the unit tests; each is proved by its port's contract suite."""
