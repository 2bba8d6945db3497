"""The dashboard's HTML: one layout, escaped text, the stylesheet and the live-update script.

Server-rendered strings (the pages are small and few); every value that is
not our own literal goes through `esc`. Dutch, as the staff read it. No
inline script or style: the Content-Security-Policy allows only our own files.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

MOUNT = "/dashboard"
LOCAL = ZoneInfo("Europe/Amsterdam")

_MONTHS = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
_DAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def day_text(day: date) -> str:
    """`vr 28 nov 2026`."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def moment_text(moment: datetime | None) -> str:
    """Local time: `28 nov 2026 13:05`."""
    if moment is None:
        return "-"
    local = moment.astimezone(LOCAL)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M}"


def query(params: Mapping[str, str | int | None]) -> str:
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def options(choices: Iterable[tuple[str, str]], selected: str | None, *, anything: str) -> str:
    parts = [f'<option value="">{esc(anything)}</option>']
    for value, label in choices:
        chosen = " selected" if value == selected else ""
        parts.append(f'<option value="{esc(value)}"{chosen}>{esc(label)}</option>')
    return "".join(parts)


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">'


def layout(
    title: str,
    content: str,
    *,
    user: str | None = None,
    role: str | None = None,
    csrf: str = "",
    admin: bool = False,
    script: bool = False,
) -> str:
    nav = ""
    if user is not None:
        audit = f'<a href="{MOUNT}/access-log">Toegangslog</a>' if admin else ""
        nav = (
            f'<nav><a href="{MOUNT}/">Overdrachten</a>'
            f'<a href="{MOUNT}/partners">Partners</a>'
            f'<a href="{MOUNT}/alerts">Meldingen</a>'
            f'<a href="{MOUNT}/dead-letters">Geweigerd</a>'
            f'<a href="{MOUNT}/reports">Rapportage</a>{audit}</nav>'
            f'<div class="who"><span>{esc(user)} · {esc(role)}</span>'
            f'<form method="post" action="{MOUNT}/sign-out" class="inline">{csrf_field(csrf)}'
            '<button type="submit" class="link">Afmelden</button></form></div>'
        )
    js = f'<script src="{MOUNT}/static/dashboard.js" defer></script>' if script else ""
    return (
        '<!doctype html>\n<html lang="nl"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · VT Gelderland-Zuid</title>"
        f'<link rel="stylesheet" href="{MOUNT}/static/dashboard.css">{js}</head>\n'
        f'<body><header><span class="brand">Veilig Thuis Gelderland-Zuid · overdrachten</span>'
        f"{nav}</header>\n<main><h1>{esc(title)}</h1>\n{content}</main></body></html>\n"
    )


CSS = """
:root { --overdue: #b00020; --overdue-bg: #fde7ea; --warning: #8a5a00; --warning-bg: #fff4d6;
  --ok: #1d6b35; --line: #d9dde3; --ink: #1b1f24; --muted: #5b6470; --accent: #154273; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: #f5f6f8; }
header { display: flex; align-items: center; gap: 1.5rem; padding: .5rem 1rem;
  background: var(--accent); color: #fff; flex-wrap: wrap; }
header a, header .link { color: #fff; }
header nav { display: flex; gap: 1rem; flex: 1; }
.brand { font-weight: 600; }
.who { display: flex; gap: .75rem; align-items: center; }
main { max-width: 1280px; margin: 0 auto; padding: .75rem 1rem 2rem; }
h1 { font-size: 1.3rem; margin: .25rem 0 .75rem; }
h2 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
a { color: var(--accent); }
table { width: 100%; border-collapse: collapse; background: #fff; table-layout: auto; }
th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line);
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #eef1f5; font-weight: 600; white-space: nowrap; }
tr.overdue td { background: var(--overdue-bg); }
tr.overdue td.stand { color: var(--overdue); font-weight: 700; }
tr.warning td { background: var(--warning-bg); }
tr.warning td.stand { color: var(--warning); font-weight: 700; }
td.stand { white-space: nowrap; }
.counts { display: flex; gap: .75rem; margin: 0 0 .75rem; flex-wrap: wrap; }
.count { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .4rem .8rem;
  min-width: 9rem; }
.count b { display: block; font-size: 1.5rem; }
.count.overdue b { color: var(--overdue); }
.count.warning b { color: var(--warning); }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end;
  margin-bottom: .75rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
select, input, textarea, button { font: inherit; }
select, input { padding: .2rem .3rem; max-width: 14rem; }
button { padding: .25rem .7rem; border: 1px solid var(--accent); background: var(--accent);
  color: #fff; border-radius: 4px; cursor: pointer; }
button.link { background: none; border: none; text-decoration: underline; padding: 0; }
button.danger { background: var(--overdue); border-color: var(--overdue); }
form.inline { display: inline; }
.pager { display: flex; gap: 1rem; align-items: center; margin: .5rem 0; }
.muted { color: var(--muted); }
.live { font-size: .8rem; color: var(--muted); }
.live.updated { color: var(--ok); font-weight: 600; }
.box { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem;
  margin-bottom: .75rem; }
.levels { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: .5rem; }
.level { border: 1px solid var(--line); border-radius: 6px; padding: .4rem .6rem; }
.level.done { border-color: var(--ok); }
.level.done h4 { color: var(--ok); }
.level h4 { margin: 0 0 .2rem; font-size: .95rem; }
.actions { display: flex; gap: 1rem; flex-wrap: wrap; margin-top: .5rem; }
.actions form { display: flex; gap: .4rem; align-items: end; flex-wrap: wrap; }
.stand-overdue { color: var(--overdue); font-weight: 700; }
.stand-warning { color: var(--warning); font-weight: 700; }
span.ok { color: var(--ok); font-weight: 600; }
span.bad { color: var(--overdue); font-weight: 600; }
.notice { padding: .5rem .8rem; border-radius: 6px; background: #e8f3ec; margin-bottom: .75rem; }
.error { padding: .5rem .8rem; border-radius: 6px; background: var(--overdue-bg);
  margin-bottom: .75rem; }
.signin { max-width: 22rem; }
.signin label { display: block; margin: .5rem 0; }
.signin input { width: 100%; max-width: none; }
figure.chart { margin: 0 0 1rem; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; padding: .5rem .75rem; }
figure.chart figcaption { font-weight: 600; margin-bottom: .25rem; }
svg.chart { max-width: 100%; height: auto; display: block; }
table.report td, table.report th { text-align: right; }
table.report td:first-child, table.report th:first-child { text-align: left; }
table.report tfoot td { border-top: 2px solid var(--ink); }
small, .small { font-size: .8rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
pre.raw { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow: auto;
  max-height: 30rem; white-space: pre-wrap; overflow-wrap: anywhere; }
tr.warning td.keys { background: var(--warning-bg); }
code, .mono { font-family: ui-monospace, Menlo, monospace; font-size: .85em; }
"""

JS = """
(function () {
  'use strict';
  var region = document.getElementById('open-list');
  var status = document.getElementById('live-status');
  if (!region || !window.EventSource) { return; }
  var marker = region.getAttribute('data-marker');
  var busy = false;
  function reload() {
    if (busy) { return; }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set('fragment', '1');
    fetch(url.toString(), { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (response) {
        if (response.status === 200) { return response.text(); }
        if (response.status === 401 || response.redirected) { window.location.reload(); }
        throw new Error('reload failed: ' + response.status);
      })
      .then(function (text) {
        region.innerHTML = text;
        if (status) {
          status.textContent = 'Bijgewerkt om ' + new Date().toLocaleTimeString('nl-NL');
          status.className = 'live updated';
        }
      })
      .catch(function () { })
      .then(function () { busy = false; });
  }
  var source = new EventSource(region.getAttribute('data-events'));
  source.addEventListener('change', function (event) {
    if (event.data !== marker) { marker = event.data; reload(); }
  });
  source.addEventListener('error', function () {
    if (status) { status.textContent = 'Live bijwerken onderbroken, opnieuw verbinden…'; }
  });
  source.addEventListener('open', function () {
    if (status && status.className !== 'live updated') { status.textContent = 'Live'; }
  });
  window.setInterval(reload, 60000);  // the colours follow the clock too
})();
"""
