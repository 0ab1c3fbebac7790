"""What a text from a lead asks for: to opt out, to opt back in, for help, or nothing of the
kind (a person answering). Case and punctuation never matter.

The FCC accepts an opt-out by any reasonable means, so the rules lean that way: the strong
keywords count anywhere in the message, the everyday words (CANCEL, END, QUIT, REMOVE) only as
the whole message or its first word, and plain requests ("stop texting me", "wrong number")
anywhere. A word that could be either ("End of day works") is read as the opt-out: losing a lead
costs less than texting someone who asked us to stop.
"""

from __future__ import annotations

import re
from enum import StrEnum

from uysp.sequence import MAX_STEPS

BRAND = "UYSP"


class ReplyKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    ANSWER = "answer"


OPT_OUT_ANYWHERE = frozenset({"stop", "stopall", "unsubscribe", "unsub", "optout", "revoke"})
OPT_OUT_LEADING = frozenset({"cancel", "end", "quit", "remove", "opt out"})
OPT_OUT_PHRASES = (
    "do not text",
    "dont text",
    "do not contact",
    "dont contact",
    "do not message",
    "dont message",
    "no more texts",
    "no more messages",
    "wrong number",
    "leave me alone",
    "take me off",
    "remove me",
    "lose my number",
    "opt me out",
)
OPT_IN_WORDS = frozenset({"start", "unstop", "yes"})
HELP_WORDS = frozenset({"help", "info"})


def normalise(text: str) -> str:
    """Casefolded words separated by single spaces; apostrophes join ("don't" is "dont"),
    other punctuation separates ("OPT-OUT" is "opt out")."""
    text = re.sub(r"['’`]", "", text.casefold())
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def classify(text: str | None) -> ReplyKind:
    words = normalise(text or "").split()
    whole = " ".join(words)
    leading = {whole, *words[:1], " ".join(words[:2])} - {""}
    padded = f" {whole} "
    if (
        OPT_OUT_ANYWHERE.intersection(words)
        or OPT_OUT_LEADING & leading
        or any(f" {phrase} " in padded for phrase in OPT_OUT_PHRASES)
    ):
        return ReplyKind.OPT_OUT
    if OPT_IN_WORDS & leading:
        return ReplyKind.OPT_IN
    if HELP_WORDS & leading:
        return ReplyKind.HELP
    return ReplyKind.ANSWER


def help_text(brand: str = BRAND) -> str:
    """The answer to HELP: who we are, how often we text, what it costs, how to stop."""
    return (
        f"{brand}: texts about booking a free sales audit, up to {MAX_STEPS} msgs per campaign."
        " Msg & data rates may apply. Reply STOP to opt out."
    )
