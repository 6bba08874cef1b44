"""Routing: a routing table (data) decides each document's destinations; economic zones are resolved here::

    table = RoutingTable.load("config/routes.yaml")
    table.require_route(RoutingFacts.from_record(record)).destinations   # ['foreign_authority', 'customs']

The command line (``hub routes show|explain``) lives in :mod:`hub.routing.cli`, kept out of this package's imports.
"""

from hub.routing.table import NoRouteError, Routing, RoutingFacts, RoutingTable, Rule, RuleExplanation
from hub.routing.zones import Zone, builtin_zones

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
