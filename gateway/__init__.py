"""Handover messaging gateway of Veilig Thuis Gelderland-Zuid."""

PROTOCOL_VERSION = 1
