"""Simulated Microsoft Graph (users and groups delta) and the Entra token endpoint.

``tenant`` holds the directory and its change log, ``delta`` the delta rounds, ``sim`` the
HTTP front (routing, auth, faults, plain reads), ``token`` the token endpoint, and
``demo_tenant`` fills a tenant with realistic Swiss data.
"""

from deltasync.sandbox.graph.demo_tenant import add_project_groups, make_tenant
from deltasync.sandbox.graph.sim import GraphSim
from deltasync.sandbox.graph.tenant import Change
from deltasync.sandbox.graph.token import IssuedToken, TokenSim
from deltasync.sandbox.graph.wire import SimRequest

__all__ = [
    "Change",
    "GraphSim",
    "IssuedToken",
    "SimRequest",
    "TokenSim",
    "add_project_groups",
    "make_tenant",
]
