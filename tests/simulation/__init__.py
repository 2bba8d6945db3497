"""The year-long simulation of the region's traffic through the real pipeline and store."""
