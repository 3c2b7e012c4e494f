"""Plans: named feature sets. Features are checked here and nowhere else (``require_feature``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from letterhead.errors import InvalidInput, PlanRequired


class Feature(StrEnum):
    DEFAULT = "default"  # the platform's default sender: every plan
    BRANDED = "branded"  # a verified branded sender address
    SMTP = "smtp"  # the tenant's own SMTP server
    DOMAINS = "domains"  # custom sending domains with DKIM
    OAUTH = "oauth"  # OAuth for Gmail / Microsoft 365


@dataclass(frozen=True)
class Plan:
    name: str
    features: frozenset[Feature]
    #: Cheaper plans first: the order the upgrade note follows.
    rank: int


BUILT_IN: dict[str, Plan] = {
    "free": Plan("free", frozenset({Feature.DEFAULT}), 0),
    "pro": Plan("pro", frozenset({Feature.DEFAULT, Feature.BRANDED, Feature.SMTP}), 1),
    "enterprise": Plan("enterprise", frozenset(Feature), 2),
}


class Plans:
    """The platform's plans: the built-in ones, overridden or extended by ``LETTERHEAD_PLANS``."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self._plans = dict(BUILT_IN)
        for name, spec in (overrides or {}).items():
            base = self._plans.get(name)
            features = spec.get("features") if isinstance(spec, dict) else None
            feats = frozenset(Feature(f) for f in features) if features is not None else None
            rank = spec.get("rank") if isinstance(spec, dict) else None
            self._plans[name] = Plan(
                name,
                feats if feats is not None else (base.features if base else frozenset({Feature.DEFAULT})),
                int(rank) if rank is not None else (base.rank if base else len(self._plans)),
            )

    def names(self) -> list[str]:
        return [p.name for p in sorted(self._plans.values(), key=lambda p: p.rank)]

    def get(self, name: str) -> Plan:
        try:
            return self._plans[name]
        except KeyError:
            raise InvalidInput(
                f"Unknown plan '{name}'. Known plans: {', '.join(self.names())}.",
                errors=[{"field": "plan", "message": "unknown plan"}],
            ) from None

    def has(self, plan_name: str, feature: Feature) -> bool:
        return feature in self.get(plan_name).features

    def cheapest_with(self, feature: Feature) -> str | None:
        for plan in sorted(self._plans.values(), key=lambda p: p.rank):
            if feature in plan.features:
                return plan.name
        return None

    def require_feature(self, plan_name: str, feature: Feature) -> None:
        """Raise ``PlanRequired`` (403) naming the cheapest plan that unlocks ``feature``."""
        if self.has(plan_name, feature):
            return
        needed = self.cheapest_with(feature)
        raise PlanRequired(
            f"The '{plan_name}' plan does not include {feature.value}; "
            + (f"upgrade to '{needed}' to use it." if needed else "no plan includes it."),
            feature=feature.value,
            plan=plan_name,
            required_plan=needed,
        )
