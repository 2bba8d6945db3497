"""The VT staff dashboard: sign-in and roles, the open handovers, case timelines, the access log.

Mount `create_dashboard_app(...)` at `/dashboard` of the gateway's web app.
See docs/dashboard.md for staff accounts, roles and what is logged.
"""

from adapters.dashboard.access_log import access_log
from adapters.dashboard.app import create_dashboard_app
from adapters.dashboard.settings import DashboardSettings, dashboard_settings
from adapters.dashboard.staff import hash_password

__all__ = [
    "DashboardSettings",
    "access_log",
    "create_dashboard_app",
    "dashboard_settings",
    "hash_password",
]
