"""Choosing a campaign's templates, the sticky A/B draw, and rendering placeholders."""

import pytest

from uysp.models import Lead, Template
from uysp.templates import MissingField, needs_name, render, templates_by_variant, variant_for

LINK = "https://u.sp/abc123"
IDS = [f"rec{i:05d}" for i in range(10_000)]


def template(
    body: str = "Hi {Name} {Link}",
    *,
    campaign: str = "c1",
    variant: str = "A",
    step: int = 1,
    active: bool = True,
) -> Template:
    return Template(campaign=campaign, variant=variant, step=step, body=body, active=active)


def make_lead(first_name: str | None = "Ana", **fields) -> Lead:
    return Lead(id=fields.pop("id", "recL1"), first_name=first_name, **fields)


# templates_by_variant


def test_templates_by_variant_keeps_active_templates_of_the_campaign():
    a1 = template(variant="A", step=1)
    a2 = template(variant="A", step=2)
    b1 = template(variant="B", step=1)
    inactive = template(variant="B", step=2, active=False)
    other = template(campaign="c2", variant="A", step=3)
    assert templates_by_variant([a1, a2, b1, inactive, other], "c1") == {
        "A": {1: a1, 2: a2},
        "B": {1: b1},
    }


def test_templates_by_variant_unknown_campaign_is_empty():
    assert templates_by_variant([template()], "nope") == {}


def test_templates_by_variant_only_inactive_is_empty():
    assert templates_by_variant([template(active=False)], "c1") == {}


# variant_for


def share_of(variant: str, ratio_a: float, variants: list[str]) -> float:
    drawn = [variant_for(Lead(id=i), ratio_a, variants) for i in IDS]
    return drawn.count(variant) / len(drawn)


@pytest.mark.parametrize(
    ("ratio_a", "low", "high"),
    [
        (0.7, 0.68, 0.72),
        (0.5, 0.48, 0.52),
        (0.2, 0.18, 0.22),
    ],
)
def test_variant_split_follows_the_ratio(ratio_a, low, high):
    assert low <= share_of("A", ratio_a, ["A", "B"]) <= high


@pytest.mark.parametrize(("ratio_a", "expected_a"), [(0.0, 0.0), (1.0, 1.0)])
def test_variant_ratio_extremes(ratio_a, expected_a):
    assert share_of("A", ratio_a, ["A", "B"]) == expected_a
    assert share_of("B", ratio_a, ["A", "B"]) == 1 - expected_a


def test_variant_ratio_applies_to_the_first_variant_in_sorted_order():
    assert share_of("A", 1.0, ["B", "A"]) == 1.0


def test_variant_three_ways_splits_the_rest_evenly():
    # 40 % to A, the other 60 % shared between B and C.
    assert 0.38 <= share_of("A", 0.4, ["A", "B", "C"]) <= 0.42
    assert 0.28 <= share_of("B", 0.4, ["A", "B", "C"]) <= 0.32
    assert 0.28 <= share_of("C", 0.4, ["A", "B", "C"]) <= 0.32


@pytest.mark.parametrize("ratio_a", [0.0, 0.5, 1.0])
def test_single_variant_takes_every_lead(ratio_a):
    assert share_of("B", ratio_a, ["B"]) == 1.0


def test_no_variants_falls_back_to_a():
    assert variant_for(Lead(id="recL1"), 0.0, []) == "A"


@pytest.mark.parametrize(
    ("kept", "ratio_a"),
    [("A", 0.0), ("B", 1.0), ("B", 0.5)],
)
def test_variant_once_drawn_is_kept(kept, ratio_a):
    assert variant_for(Lead(id="recL1", variant=kept), ratio_a, ["A", "B"]) == kept


def test_variant_is_deterministic_per_lead_id():
    first = [variant_for(Lead(id=i), 0.5, ["A", "B"]) for i in IDS[:500]]
    again = [variant_for(Lead(id=i, first_name="Other"), 0.5, ["B", "A"]) for i in IDS[:500]]
    assert first == again
    assert set(first) == {"A", "B"}  # and it is a real draw, not a constant


# needs_name and render


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {Name}", True),
        ("Hi {first_name}", True),
        ("Hi { Name }", True),
        ("Hi {  first_name}", True),
        ("Hi there {Link}", False),
        ("Hi {name}", False),  # placeholders are case-sensitive
        ("Hi {Company}", False),
    ],
)
def test_needs_name(body, expected):
    assert needs_name(template(body)) is expected


@pytest.mark.parametrize(
    ("body", "first_name", "expected"),
    [
        ("Hi {Name}, book here: {Link}", "Ana", f"Hi Ana, book here: {LINK}"),
        ("Hi {first_name}! {Link}", "Ana", f"Hi Ana! {LINK}"),
        ("Hi { Name }, { Link }", "Ana", f"Hi Ana, {LINK}"),
        ("Hi {  first_name  } {Link  }", "Ana", f"Hi Ana {LINK}"),
        ("{Name} {Name}: {Link} / {Link}", "Ana", f"Ana Ana: {LINK} / {LINK}"),
        ("Hi {Name}", "  Ana  ", "Hi Ana"),  # the name is trimmed
        ("  Hi {Name} {Link}  ", "Ana", f"Hi Ana {LINK}"),  # and so is the text
        ("Hi {Name}", r"Jo\1$&", r"Hi Jo\1$&"),  # no regex expansion of the value
        ("Hi {Company} {Link}", "Ana", f"Hi {{Company}} {LINK}"),  # unknown: left as is
        ("No placeholders", "Ana", "No placeholders"),
    ],
)
def test_render(body, first_name, expected):
    assert render(template(body), make_lead(first_name), LINK) == expected


@pytest.mark.parametrize("first_name", [None, "", "   "])
@pytest.mark.parametrize("body", ["Hi {Name} {Link}", "Hi {first_name}", "Hi { Name }"])
def test_render_blank_name_used_raises_missing_field(body, first_name):
    with pytest.raises(MissingField) as caught:
        render(template(body, step=2), make_lead(first_name, id="recXYZ"), LINK)
    assert str(caught.value) == "lead recXYZ: First Name is blank and step 2 uses it"


@pytest.mark.parametrize("first_name", [None, "", "   "])
def test_render_blank_name_unused_is_fine(first_name):
    text = render(template("Hello there, book here: {Link}"), make_lead(first_name), LINK)
    assert text == f"Hello there, book here: {LINK}"


def test_missing_field_is_a_value_error():
    assert issubclass(MissingField, ValueError)
