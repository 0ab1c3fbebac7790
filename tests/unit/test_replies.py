"""Reply classification, table-driven: keywords in any case and punctuation, plain requests."""

import pytest

from uysp.replies import ReplyKind, classify, help_text, normalise

OPT_OUT, OPT_IN, HELP, ANSWER = (
    ReplyKind.OPT_OUT,
    ReplyKind.OPT_IN,
    ReplyKind.HELP,
    ReplyKind.ANSWER,
)


@pytest.mark.parametrize(
    "keyword",
    [
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "OPT OUT",
        "OPT-OUT",
        "REMOVE",
        "UNSUB",
    ],
)
@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.title, lambda k: f" {k}!! "])
def test_every_opt_out_keyword_in_any_case_and_punctuation(keyword, spelling):
    assert classify(spelling(keyword)) == OPT_OUT


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # opt-out keywords as the first word, and the strong ones anywhere
        ("Stop please", OPT_OUT),
        ("Cancel my texts", OPT_OUT),
        ("Opt out now", OPT_OUT),
        ("please STOP", OPT_OUT),
        ("I said unsubscribe.", OPT_OUT),
        ("stop!", OPT_OUT),
        ("S T O P", ANSWER),  # not a word we can read
        # plain requests
        ("Stop texting me", OPT_OUT),
        ("Please do not text this number again", OPT_OUT),
        ("Don't text me", OPT_OUT),
        ("don’t contact me", OPT_OUT),
        ("wrong number", OPT_OUT),
        ("Sorry, Wrong Number!", OPT_OUT),
        ("Leave me alone", OPT_OUT),
        ("take me off your list", OPT_OUT),
        ("Remove me", OPT_OUT),
        ("No more texts pls", OPT_OUT),
        # everyday words only count up front
        ("I'll cancel my other call and take the 3pm", ANSWER),
        ("Can we meet at the end of the week?", ANSWER),
        # opt back in
        ("START", OPT_IN),
        ("unstop", OPT_IN),
        ("Yes", OPT_IN),
        ("yes please!", OPT_IN),
        # help
        ("HELP", HELP),
        ("help?", HELP),
        ("Info", HELP),
        ("info please", HELP),
        # opt-out outranks the rest
        ("yes stop", OPT_OUT),
        ("help me unsubscribe", OPT_OUT),
        # a person answering
        ("Sounds good, what times do you have?", ANSWER),
        ("Who is this?", ANSWER),
        ("I need some help with my pipeline", ANSWER),
        ("", ANSWER),
        (None, ANSWER),
        ("👍", ANSWER),
    ],
)
def test_classify(text, kind):
    assert classify(text) == kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("OPT-OUT", "opt out"),
        ("Don't", "dont"),
        ("  Stop!!!  now ", "stop now"),
        ("STOP_ALL", "stop all"),
        ("Ça va?", "ça va"),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_the_help_reply_names_brand_frequency_rates_and_opt_out():
    text = help_text("UYSP")
    assert text.startswith("UYSP:")
    assert "up to 3 msgs per campaign" in text
    assert "Msg & data rates may apply" in text
    assert "Reply STOP to opt out" in text
