"""The dashboard's settings: the `[dashboard]` table of the gateway's TOML file.

They live with the gateway's other settings (`gateway.settings`), which read them.
"""

from __future__ import annotations

from gateway.settings import DashboardSettings, dashboard_settings

__all__ = ["DashboardSettings", "dashboard_settings"]
