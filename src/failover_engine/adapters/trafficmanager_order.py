"""Traffic Manager: the order of the endpoint PATCHes that switches a profile (pure, no I/O).

Traffic Manager has no atomic multi-endpoint write, so :func:`order_updates` computes PATCHes,
one endpoint each, that keep every intermediate state valid for the API (unique priorities,
1-1000) and never drop traffic; see its docstring. Used by
:class:`~failover_engine.adapters.trafficmanager.TrafficManagerAdapter`.
"""
from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from failover_engine.core.plan import Attrs
from failover_engine.core.rules import PRIORITY_MAX

ENABLED, DISABLED = "Enabled", "Disabled"


# --------------------------------------------------------------------------- update ordering (pure)
@dataclass(frozen=True)
class EndpointState:
    """What the ordering needs to know of one endpoint of a profile."""

    priority: int | None = None
    weight: int | None = None
    endpoint_status: str = ENABLED


class OrderingError(ValueError):
    """The wanted state breaks an API rule (e.g. two endpoints on one priority)."""


def _serving(states: Mapping[str, EndpointState], priority_routing: bool) -> frozenset[str]:
    """The endpoints that take traffic: the enabled one with the lowest priority, or every enabled one."""
    enabled = [(s.priority or PRIORITY_MAX + 1, n) for n, s in states.items() if s.endpoint_status == ENABLED]
    if not enabled:
        return frozenset()
    return frozenset([min(enabled)[1]]) if priority_routing else frozenset(n for _unused, n in enabled)


def _duplicates(states: Mapping[str, EndpointState]) -> dict[int, list[str]]:
    held: dict[int, list[str]] = defaultdict(list)
    for n, s in states.items():
        if s.priority is not None:
            held[s.priority].append(n)
    return {p: sorted(ns) for p, ns in held.items() if len(ns) > 1}


def order_updates(current: Mapping[str, EndpointState], wanted: Mapping[str, Attrs], *,
                  priority_routing: bool) -> list[tuple[str, dict[str, Any]]]:
    """The PATCHes, in order, that take the profile from ``current`` to ``wanted``.

    ``current``: every endpoint of the profile (managed or not); ``wanted``: endpoint name →
    attributes to hold (``priority``, ``weight``, ``endpoint_status``; ``{}``: keep as it is). Only
    endpoints named in ``wanted`` are ever written, and those may step aside for a while. Returns
    (endpoint, attributes to set) pairs. After each one priorities are unique (an API rule) and,
    whenever some order allows it:

    * traffic is never dropped: some endpoint still takes traffic (if one did before);
    * with ``priority_routing`` the endpoint answering DNS goes from the current one straight to
      the final one, never through a third (resolvers would cache it for the TTL): an endpoint in
      the way is parked on a free priority (highest first) and put back afterwards.

    Each constructed order is checked step by step against these rules. When none keeps them (an
    endpoint the binding does not manage sits in the way), the hand-over rule is dropped, then the
    traffic rule; unique priorities always hold. Raises :class:`OrderingError` when the wanted
    state itself breaks a rule.
    """
    unknown = sorted(set(wanted) - set(current))
    if unknown:
        raise OrderingError(f"no endpoint(s) {', '.join(unknown)} in the profile")
    final = {n: replace(s, **dict(wanted.get(n, {}))) for n, s in current.items()}
    dups = _duplicates(final)
    if dups:
        clash = "; ".join(f"priority {p}: {', '.join(ns)}" for p, ns in sorted(dups.items()))
        raise OrderingError(f"two endpoints would share a priority ({clash}); give the endpoints this "
                            "binding does not manage priorities above the bound ones")
    names = sorted(wanted)
    plans: list[list[tuple[str, dict[str, Any]]]] = []
    if all(final[n].priority == current[n].priority for n in names):
        plans.append(_in_place_order(current, final, names))
    else:
        if priority_routing:
            with suppress(OrderingError):
                plans.append(_handover_order(current, final, names))
        plans.append(_unique_only_order(current, final, names))
    for rules in (("traffic", "handover"), ("traffic",)):
        for plan in plans:
            if _keeps(current, final, plan, priority_routing, rules):
                return plan
    return plans[-1]


def _activation_key(n: str, state: Mapping[str, EndpointState], final: Mapping[str, EndpointState]) -> tuple[int, int, str]:
    """Endpoints being enabled first (lowest final priority first), those being disabled last (the
    one answering DNS last of all), the rest in between."""
    status = _diff(state[n], final[n]).get("endpoint_status")
    if status == DISABLED:
        return (2, -(state[n].priority or 0), n)
    return (0 if status == ENABLED else 1, final[n].priority or 0, n)


def _diff(a: EndpointState, b: EndpointState) -> dict[str, Any]:
    return {k: getattr(b, k) for k in ("priority", "weight", "endpoint_status") if getattr(a, k) != getattr(b, k)}


def _in_place_order(current: Mapping[str, EndpointState], final: Mapping[str, EndpointState],
                    names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """No priority moves (status and weight only): enable first, disable last."""
    return [(n, _diff(current[n], final[n])) for n in sorted(names, key=lambda n: _activation_key(n, current, final))
            if _diff(current[n], final[n])]


def _keeps(current: Mapping[str, EndpointState], final: Mapping[str, EndpointState],
           plan: list[tuple[str, dict[str, Any]]], priority_routing: bool, rules: tuple[str, ...]) -> bool:
    """Does ``plan`` reach ``final`` with unique priorities at every step, keeping ``rules``?"""
    state = dict(current)
    start, end = _serving(current, priority_routing), _serving(final, priority_routing)
    switched = start == end
    for name, attrs in plan:
        state[name] = replace(state[name], **attrs)
        serving = _serving(state, priority_routing)
        if _duplicates(state) or ("traffic" in rules and start and not serving):
            return False
        if "handover" in rules and priority_routing and not serving <= (end if switched else start | end):
            return False
        switched = switched or serving == end
    return state == dict(final)


class _Moves:
    """A profile being rearranged on paper, and the PATCHes that got it there."""

    def __init__(self, current: Mapping[str, EndpointState], final: Mapping[str, EndpointState], names: list[str]):
        self.state, self.final, self.names = dict(current), final, names
        self.out: list[tuple[str, dict[str, Any]]] = []
        used = {s.priority for s in current.values()} | {s.priority for s in final.values()}
        self.slots = [p for p in range(PRIORITY_MAX, 0, -1) if p not in used]  # parking, highest first

    def move(self, n: str, attrs: Mapping[str, Any]) -> None:
        change = {k: v for k, v in attrs.items() if getattr(self.state[n], k) != v}
        if change:
            self.state[n] = replace(self.state[n], **change)
            self.out.append((n, change))

    def home(self, n: str) -> None:
        self.move(n, asdict(self.final[n]))

    def park(self, n: str) -> None:
        if n not in self.names or not self.slots:
            raise OrderingError(f"no way to move {n} out of the way (not managed, or no free priority)")
        self.move(n, {"priority": self.slots.pop(0)})

    def holder(self, priority: int | None, but: str) -> str | None:
        return next((m for m, s in self.state.items() if s.priority == priority and m != but), None)

    def rest_home(self) -> list[tuple[str, dict[str, Any]]]:
        """Park whoever sits on a priority another endpoint wants, then send everyone home."""
        rest = [n for n in self.names if self.state[n] != self.final[n]]
        wanted_by = {self.final[n].priority: n for n in rest}
        for n in rest:
            if wanted_by.get(self.state[n].priority, n) != n:
                self.park(n)
        for n in sorted(rest, key=lambda n: _activation_key(n, self.state, self.final)):
            self.home(n)
        return self.out


def _top(states: Mapping[str, EndpointState]) -> str | None:
    return next(iter(_serving(states, True)), None)


def _handover_order(current: Mapping[str, EndpointState], final: Mapping[str, EndpointState],
                    names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Priority routing: clear the way for the new top endpoint, hand over in one PATCH, then tidy."""
    m = _Moves(current, final, names)
    old, new = _top(current), _top(final)
    if old is not None and new is not None and old != new:
        _hand_over(m, old, new)
    if new is not None and new in names and m.state[new] != final[new]:  # the new endpoint settles
        blocker = m.holder(final[new].priority, new)
        if blocker is not None:
            m.park(blocker)
        m.home(new)
    return m.rest_home()


def _hand_over(m: _Moves, old: str, new: str) -> None:
    """Make ``new`` the enabled endpoint with the lowest priority in one PATCH, ``old`` answering until then."""
    if new not in m.names:
        raise OrderingError(f"endpoint {new} is not managed")
    state, final = m.state, m.final
    for n in m.names:  # 1. enabled endpoints between the two step aside
        if n not in (old, new) and state[n].endpoint_status == ENABLED and \
                (state[n].priority or 0) < (state[new].priority or PRIORITY_MAX + 1):
            m.park(n)
    others = [s.priority or 0 for n, s in state.items() if n not in (old, new) and s.endpoint_status == ENABLED]
    ceiling = min(others, default=PRIORITY_MAX + 1)
    goal, here = final[new].priority, state[new].priority
    blocker = m.holder(goal, new)
    if blocker is not None and blocker != old and blocker in m.names:
        m.park(blocker)  # disabled, or behind the old endpoint: parking it moves no traffic
    if goal is not None and m.holder(goal, new) is None and goal < ceiling:
        pick: int | None = goal
    elif here is not None and here < ceiling:
        pick = here
    else:  # 2. the new endpoint right behind the old one
        low = (state[old].priority or 0) + 1
        pick = next((p for p in range(low, min(ceiling, PRIORITY_MAX + 1)) if m.holder(p, new) is None), None)
        if pick is None:
            raise OrderingError("no free priority between the old and the new endpoint")
    m.move(new, {"priority": pick, "endpoint_status": ENABLED})
    if _top(state) == old:  # 3. the hand-over: the old endpoint leaves the top
        if old not in m.names:
            raise OrderingError(f"endpoint {old} is not managed")
        if m.holder(final[old].priority, old) is None and _top({**state, old: final[old]}) == new:
            m.home(old)
        else:
            m.park(old)


def _unique_only_order(current: Mapping[str, EndpointState], final: Mapping[str, EndpointState],
                       names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Park every endpoint holding a priority another one wants, then give each its final
    attributes (enabling first). Priorities stay unique; nothing else is promised."""
    return _Moves(current, final, names).rest_home()
