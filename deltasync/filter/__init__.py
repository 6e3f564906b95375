"""The ``advanced.user_filter`` OData ``$filter``, evaluated by deltasync itself.

Graph's delta query cannot filter (only ``id eq …``), so deltasync reads every user and applies
the administrator's filter to the mirrored JSON properties. The filter is parsed once
(at config load, so a typo is a configuration error) and evaluated per user.

Supported (the subset of OData v4 that Entra's ``$filter`` offers on users)::

    or  <  and  <  not  <  comparison            (precedence, loosest first)
    eq ne gt ge lt le     prop in ('a', 'b')     ( … )
    startswith(p, 'x')    endswith(p, 'x')       contains(p, 'x')
    proxyAddresses/any(a: startswith(a, 'smtp:'))    proxyAddresses/all(a: …)   x/any()
    'text' (with '' for a quote)   42   -7   true   false   null
    2024-01-01   2024-01-01T08:00:00Z   (date and date-time literals, unquoted as in OData)
    onPremisesExtensionAttributes/extensionAttribute1   (a property of a complex property)

Semantics, chosen to match Entra where Entra has an answer:

- String comparisons and functions ignore case (Entra's do).
- A missing key is null. ``x eq null`` is true when ``x`` is missing or None; ``x ne 'a'`` is
  true for a null ``x``; ordering comparisons and functions with a null operand are false.
- Values of different types are never equal (``accountEnabled eq 'true'`` is a parse error
  for the well-known properties, and false for properties deltasync does not know).
- ``any``/``all`` over a null collection behave as over an empty one (``any`` false,
  ``all`` true); a bare ``coll/any()`` is true for a non-empty collection.
- A bare property (``accountEnabled``) is true only when its value is the boolean ``true``.

Errors raise :class:`FilterError`, whose message quotes the position (counted from 1) and the
filter text.
"""

from __future__ import annotations

from deltasync.errors import FilterError
from deltasync.fields import GRAPH_USER_PROPERTIES, property_name_problem
from deltasync.filter.parser import Filter, parse_filter

__all__ = [
    "GRAPH_USER_PROPERTIES",
    "Filter",
    "FilterError",
    "parse_filter",
    "property_name_problem",
]
