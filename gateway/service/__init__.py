"""The service layer: the verification pipeline and, later, the handlers."""
