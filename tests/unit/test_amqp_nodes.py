"""The broker's nodes in turn (adapters/amqp/connection.py `NodeList`), as failover walks them."""

from __future__ import annotations

import pytest

from adapters.amqp.connection import NodeList
from gateway.domain.errors import ConfigurationError

NODES = ("amqp://n1:5672/", "amqp://n2:5672/", "amqp://n3:5672/")


def test_the_first_node_is_the_one_started_from() -> None:
    """Without a start, the list's first node; with one, that node."""
    assert NodeList(NODES).current == NODES[0]
    assert NodeList(NODES, start=2).current == NODES[2]


def test_advancing_goes_round_robin_through_every_node() -> None:
    """After a failure the next node, after the last the first: every node before a repeat."""
    nodes = NodeList(NODES, start=1)
    walked = [nodes.advance() for _ in range(6)]
    assert walked == [NODES[2], NODES[0], NODES[1], NODES[2], NODES[0], NODES[1]]


def test_a_single_node_is_always_the_one() -> None:
    """One URL: advancing stays on it (the robust connection retries that node)."""
    nodes = NodeList(NODES[:1])
    assert [nodes.advance(), nodes.advance()] == [NODES[0], NODES[0]]
    assert len(nodes) == 1


def test_a_start_past_the_end_wraps_around() -> None:
    """The start index is taken modulo the number of nodes."""
    assert NodeList(NODES, start=4).current == NODES[1]


def test_no_node_is_a_configuration_error() -> None:
    """An empty list cannot be connected to: the settings are wrong."""
    with pytest.raises(ConfigurationError):
        NodeList(())
