"""Lead names and the Challenge lead sets.

Every other module speaks in canonical lead names (``I, II, III, aVR, aVL, aVF, V1..V6``).
Databases spell them differently (PTB-XL writes ``AVR``, PTB writes ``avr``), so names are
normalised once, here, case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TWELVE_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
SIX_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF")
FOUR_LEADS: tuple[str, ...] = ("I", "II", "III", "V2")
THREE_LEADS: tuple[str, ...] = ("I", "II", "V2")
TWO_LEADS: tuple[str, ...] = ("I", "II")

#: The five lead sets of the Challenge, largest first.
LEAD_SETS: tuple[tuple[str, ...], ...] = (TWELVE_LEADS, SIX_LEADS, FOUR_LEADS, THREE_LEADS, TWO_LEADS)

_CANONICAL = {name.upper(): name for name in TWELVE_LEADS}


def canonical_lead(name: str) -> str:
    """The canonical spelling of a lead name (``AVR``/``avr`` -> ``aVR``); unknown names pass through stripped."""
    stripped = name.strip()
    return _CANONICAL.get(stripped.upper(), stripped)


def sort_leads(leads: Iterable[str]) -> tuple[str, ...]:
    """Leads in the Challenge's canonical order; unknown names follow in their input order."""
    leads = list(leads)
    known = [lead for lead in TWELVE_LEADS if lead in leads]
    unknown = [lead for lead in leads if lead not in TWELVE_LEADS]
    return tuple(known + unknown)


def lead_indices(available: Sequence[str], wanted: Sequence[str]) -> list[int | None]:
    """For each wanted lead, its row in ``available`` (matched case-insensitively), or None when absent."""
    position = {canonical_lead(name): i for i, name in enumerate(available)}
    return [position.get(canonical_lead(name)) for name in wanted]
