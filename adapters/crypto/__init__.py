"""Key material on disk."""
