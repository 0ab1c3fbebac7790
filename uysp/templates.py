"""Template choice, rendering and the sticky A/B draw."""

from __future__ import annotations

import hashlib
import re

from uysp.models import Lead, Template

_NAME = re.compile(r"\{\s*(Name|first_name)\s*\}")
_LINK = re.compile(r"\{\s*Link\s*\}")


class MissingField(ValueError):
    """The template needs a lead field that is blank."""


def templates_by_variant(
    templates: list[Template], campaign: str
) -> dict[str, dict[int, Template]]:
    """Active templates of one campaign as {variant: {step: template}}."""
    table: dict[str, dict[int, Template]] = {}
    for template in templates:
        if template.active and template.campaign == campaign:
            table.setdefault(template.variant, {})[template.step] = template
    return table


def variant_for(lead: Lead, ratio_a: float, variants: list[str]) -> str:
    """The lead's variant: kept once drawn, otherwise drawn from a hash of the lead id, so the
    same lead lands in the same variant even if a run dies before the draw is saved."""
    if lead.variant:
        return lead.variant
    ordered = sorted(variants) or ["A"]
    if len(ordered) == 1:
        return ordered[0]
    draw = int.from_bytes(hashlib.sha256(lead.id.encode()).digest()[:8], "big") / 2**64
    if draw < ratio_a:
        return ordered[0]
    others = ordered[1:]
    return others[int((draw - ratio_a) / (1 - ratio_a) * len(others)) % len(others)]


def needs_name(template: Template) -> bool:
    return bool(_NAME.search(template.body))


def render(template: Template, lead: Lead, link: str) -> str:
    first_name = (lead.first_name or "").strip()
    if needs_name(template) and not first_name:
        raise MissingField(f"lead {lead.id}: First Name is blank and step {template.step} uses it")
    text = _NAME.sub(lambda _: first_name, template.body)
    return _LINK.sub(lambda _: link, text).strip()
