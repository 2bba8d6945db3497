"""Where the gateway's data folders are: schemas/, contracts/ and config/.

In a checkout they are the repository's top-level folders beside gateway/; an
installed wheel carries them inside the package as gateway/_data/<name>
(pyproject.toml force-includes them there). The wheel's copy is looked for
first, so that an installed gateway never picks up a stray folder of the same
name beside it in site-packages.
"""

from __future__ import annotations

from pathlib import Path

from gateway.domain.errors import ConfigurationError

DATA_FOLDERS = frozenset({"schemas", "contracts", "config"})

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (schemas, contracts or config) of this installation."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"{name!r} is not a data folder: one of {', '.join(sorted(DATA_FOLDERS))}")
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent / name
    if checkout.is_dir():
        return checkout
    raise ConfigurationError(f"data folder {name!r} is neither at {installed} nor at {checkout}")
