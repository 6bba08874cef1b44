"""Routing: a routing table (data) decides each document's destinations; economic zones are resolved here::

    table = RoutingTable.load("config/routes.yaml")
    table.require_route(routing_facts(record)).destinations   # ['foreign_authority', 'customs']

The command line (``hub routes show|explain``) lives in :mod:`hub.cli.routes`.
"""

from hub.families import RoutingFacts
from hub.errors import NoRouteError
from hub.routing.table import Routing, RoutingTable, Rule, RuleExplanation
from hub.zones import Zone, builtin_zones

__all__ = [
    "NoRouteError",
    "Routing",
    "RoutingFacts",
    "RoutingTable",
    "Rule",
    "RuleExplanation",
    "Zone",
    "builtin_zones",
]
