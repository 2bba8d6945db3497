"""Hypothesis strategies for protocol messages: valid ones, and near misses."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from gateway.service.validation import ReferenceValidator

JsonObject = dict[str, Any]

# Printable text without control characters: the schemas' free text allows
# line breaks in places and not in others, so the repair step decides.
free_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
)
uuids = st.builds(lambda: str(uuid.uuid4())) | st.uuids().map(str)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        obj = obj[part]
    obj[path[-1]] = value


def _delete(obj: Any, path: tuple[Any, ...]) -> None:
    for part in path[:-1]:
        obj = obj[part]
    del obj[path[-1]]


def valid_envelopes(
    examples: dict[str, JsonObject], reference: ReferenceValidator, now_text: Callable[[], str]
) -> st.SearchStrategy[JsonObject]:
    """Envelopes of every type with random ids and randomised content, all schema-valid.

    Each body leaf is offered a random replacement of its own JSON type; the
    reference validator keeps the replacement only when the envelope stays
    valid, so the result is valid by construction and still far from the example.
    """

    @st.composite
    def build(draw: st.DrawFn) -> JsonObject:
        obj = copy.deepcopy(draw(st.sampled_from(sorted(examples.items())))[1])
        obj["id"] = draw(uuids)
        obj["thread"] = draw(st.sampled_from([obj["id"], draw(uuids)]))
        if "reply_to" in obj:
            obj["reply_to"] = draw(uuids)
        obj["sent_at"] = now_text()
        for path, value in _leaves(obj["body"]):
            if not draw(st.booleans()):
                continue
            if isinstance(value, bool):
                candidate: Any = draw(st.booleans())
            elif isinstance(value, int):
                candidate = draw(st.integers(min_value=0, max_value=10))
            elif isinstance(value, str):
                candidate = draw(free_text)
            else:
                continue
            trial = copy.deepcopy(obj)
            _set(trial["body"], path, candidate)
            if reference.is_valid(trial):
                obj = trial
        return obj

    return build()


def near_misses(valid: st.SearchStrategy[JsonObject]) -> st.SearchStrategy[JsonObject]:
    """A valid envelope with one random change that may or may not break the schema."""

    @st.composite
    def build(draw: st.DrawFn) -> JsonObject:
        obj = draw(valid)
        leaves = _leaves(obj)
        path, _ = draw(st.sampled_from(leaves))
        change = draw(st.sampled_from(["delete", "text", "int", "bool", "null", "list", "extra"]))
        if change == "delete":
            _delete(obj, path)
        elif change == "extra":  # a member more in an object, an item more in a list
            parent = obj
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(free_text)
            else:
                parent.append(draw(free_text))
        else:
            replacement = {
                "text": free_text,
                "int": st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
                "bool": st.booleans(),
                "null": st.none(),
                "list": st.lists(free_text, max_size=2),
            }[change]
            _set(obj, path, draw(replacement))
        return obj

    return build()
