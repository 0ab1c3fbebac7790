"""The subset of Airtable's formula language the fake evaluates in `filterByFormula`.

Comparisons (= != < > <= >=), `&` concatenation, + - * /, `{Field}` references, string and
number literals, AND, OR, IF, RECORD_ID() and the functions in FUNCTIONS. Blank cells follow
Airtable's rules: a blank equals '' and BLANK(), counts as 0 in a number comparison, and is
false as a condition.
Anything else raises FormulaError, which the fake answers as INVALID_FILTER_BY_FORMULA.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<field>\{(?:\\.|[^}\\])*\})
      | (?P<string>'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><=|>=|!=|[=<>&+\-*/(),])
    )""",
    re.VERBOSE,
)
_COMPARISONS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


class FormulaError(ValueError):
    pass


@dataclass(frozen=True)
class Row:
    """What a formula sees of one record: its id and its cells, blank cells absent."""

    id: str
    cells: Mapping[str, Any]


def parse_datetime(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FormulaError(f"cannot parse {text!r} as a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def truthy(value: Any) -> bool:
    return value not in (None, "", 0, False)


def _blank_like(other: Any) -> Any:
    if isinstance(other, str):
        return ""
    if isinstance(other, int | float):
        return 0
    return None


def compare(op: str, left: Any, right: Any) -> bool:
    if left is None and right is None:
        return op in ("=", "<=", ">=")
    left = _blank_like(right) if left is None else left
    right = _blank_like(left) if right is None else right
    if isinstance(left, datetime) and isinstance(right, str):
        right = parse_datetime(right)
    if isinstance(right, datetime) and isinstance(left, str):
        left = parse_datetime(left)
    if left is None or right is None:
        return op == "!="
    if isinstance(left, str) != isinstance(right, str):
        left, right = as_text(left), as_text(right)
    try:
        return _COMPARISONS[op](left, right)
    except TypeError as exc:
        raise FormulaError(f"cannot compare {left!r} {op} {right!r}") from exc


def _number(value: Any) -> float:
    return 0 if value in (None, "") else float(value)


def _find(needle: Any, haystack: Any, start: Any = 1) -> int:
    return as_text(haystack).find(as_text(needle), max(int(start) - 1, 0)) + 1


def _date_pair(a: Any, b: Any) -> tuple[datetime, datetime]:
    return (
        a if isinstance(a, datetime) else parse_datetime(as_text(a)),
        b if isinstance(b, datetime) else parse_datetime(as_text(b)),
    )


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "NOT": lambda value: not truthy(value),
    "TRUE": lambda: True,
    "FALSE": lambda: False,
    "BLANK": lambda: None,
    "LEN": lambda value: len(as_text(value)),
    "LOWER": lambda value: as_text(value).lower(),
    "UPPER": lambda value: as_text(value).upper(),
    "TRIM": lambda value: as_text(value).strip(),
    "LEFT": lambda value, count: as_text(value)[: int(count)],
    "RIGHT": lambda value, count: as_text(value)[-int(count) :] if int(count) else "",
    "FIND": _find,
    "REGEX_REPLACE": lambda value, pattern, repl: re.sub(
        as_text(pattern), as_text(repl), as_text(value)
    ),
    "DATETIME_PARSE": lambda value, *_format: parse_datetime(as_text(value)),
    "IS_BEFORE": lambda a, b: compare("<", *_date_pair(a, b)),
    "IS_AFTER": lambda a, b: compare(">", *_date_pair(a, b)),
}


class _Equals:
    """`expression = 'text'`, kept recognisable so that an OR() of many of them on the same
    expression (the store's id lookups) is one set lookup per row instead of hundreds."""

    def __init__(self, left, left_source: tuple, literal: str) -> None:
        self.left, self.left_source, self.literal = left, left_source, literal

    def __call__(self, row: Row, cell) -> bool:
        return compare("=", self.left(row, cell), self.literal)


def _compare_node(op: str, left, right):
    return lambda row, cell: compare(op, left(row, cell), right(row, cell))


def _logical(name: str, args: list):
    """AND, OR and IF evaluate only the arguments they need, like Airtable's."""
    if name == "IF":
        if len(args) not in (2, 3):
            raise FormulaError("IF() takes 2 or 3 arguments")
        cond, then, otherwise = (*args, lambda row, cell: "")[:3]
        return lambda row, cell: (then if truthy(cond(row, cell)) else otherwise)(row, cell)
    if not args:
        raise FormulaError(f"{name}() needs arguments")
    equalities = [a for a in args if isinstance(a, _Equals)]
    same_left = len({a.left_source for a in equalities}) == 1
    if name == "OR" and len(equalities) == len(args) > 1 and same_left:
        left, literals = equalities[0].left, {a.literal for a in equalities}

        def one_of(row: Row, cell) -> bool:
            value = left(row, cell)
            value = "" if value is None else value
            if isinstance(value, str):
                return value in literals
            return any(compare("=", value, literal) for literal in literals)

        return one_of
    test = all if name == "AND" else any
    return lambda row, cell: test(truthy(arg(row, cell)) for arg in args)


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    """Recursive descent over the tokens; evaluates as it parses against one row's cells."""

    def __init__(self, formula: str) -> None:
        self.tokens = self._tokenize(formula)
        self.fields = {_unescape(text[1:-1]) for kind, text in self.tokens if kind == "field"}
        self.pos = 0

    @staticmethod
    def _tokenize(formula: str) -> list[tuple[str, str]]:
        tokens, pos = [], 0
        while pos < len(formula):
            if not formula[pos:].strip():
                break
            match = _TOKEN.match(formula, pos)
            if not match:
                raise FormulaError(f"unexpected text at {formula[pos : pos + 20]!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            pos = match.end()
        return tokens

    def parse(self) -> Callable[[Row, Callable[[str, Row], Any]], Any]:
        node = self._comparison()
        if self.pos != len(self.tokens):
            raise FormulaError(f"unexpected {self.tokens[self.pos][1]!r}")
        return node

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token[0] == "end" or (value is not None and token[1] != value):
            raise FormulaError(f"expected {value or 'a value'}, found {token[1] or 'the end'!r}")
        self.pos += 1
        return token

    def _binary(self, operators: set[str], operand, combine):
        node = operand()
        while self._peek()[0] == "op" and self._peek()[1] in operators:
            op = self._take()[1]
            node = combine(op, node, operand())
        return node

    def _comparison(self):
        start = self.pos
        node = self._concat()
        while self._peek()[0] == "op" and self._peek()[1] in _COMPARISONS:
            left_source = tuple(self.tokens[start : self.pos])
            op = self._take()[1]
            right_start = self.pos
            right = self._concat()
            right_tokens = self.tokens[right_start : self.pos]
            if op == "=" and len(right_tokens) == 1 and right_tokens[0][0] == "string":
                node = _Equals(node, left_source, _unescape(right_tokens[0][1][1:-1]))
            else:
                node = _compare_node(op, node, right)
        return node

    def _concat(self):
        def combine(_op, left, right):
            return lambda row, cell: as_text(left(row, cell)) + as_text(right(row, cell))

        return self._binary({"&"}, self._additive, combine)

    def _additive(self):
        return self._binary({"+", "-"}, self._term, self._arithmetic)

    def _term(self):
        return self._binary({"*", "/"}, self._primary, self._arithmetic)

    @staticmethod
    def _arithmetic(op, left, right):
        apply = _ARITHMETIC[op]
        return lambda row, cell: apply(_number(left(row, cell)), _number(right(row, cell)))

    def _primary(self):
        kind, text = self._take()
        if kind == "number":
            value = float(text) if "." in text else int(text)
            return lambda row, cell: value
        if kind == "string":
            literal = _unescape(text[1:-1])
            return lambda row, cell: literal
        if kind == "field":
            name = _unescape(text[1:-1])
            return lambda row, cell: cell(name, row)
        if kind == "op" and text == "-":
            operand = self._primary()
            return lambda row, cell: -_number(operand(row, cell))
        if kind == "op" and text == "(":
            node = self._comparison()
            self._take(")")
            return node
        if kind == "name":
            return self._call(text.upper())
        raise FormulaError(f"unexpected {text!r}")

    def _call(self, name: str):
        self._take("(")
        args = []
        if self._peek()[1] != ")":
            args.append(self._comparison())
            while self._peek()[1] == ",":
                self._take(",")
                args.append(self._comparison())
        self._take(")")
        if name == "RECORD_ID":
            return lambda row, cell: row.id
        if name in ("AND", "OR", "IF"):
            return _logical(name, args)
        function = FUNCTIONS.get(name)
        if function is None:
            raise FormulaError(f"unknown function {name}()")
        return lambda row, cell: function(*(arg(row, cell) for arg in args))


def compile_formula(
    formula: str, known_fields: set[str], cell_value: Callable[[str, Row], Any]
) -> Callable[[Row], bool]:
    """A predicate over rows. Syntax errors, unknown functions and unknown field names fail
    the whole request; a value error in one row (a blank date in IS_AFTER) only drops that row."""
    parser = _Parser(formula)
    unknown = sorted(parser.fields - known_fields)
    if unknown:
        raise FormulaError(f"Unknown field names: {', '.join(unknown)}")
    node = parser.parse()

    def predicate(row: Row) -> bool:
        try:
            return truthy(node(row, cell_value))
        except (TypeError, ValueError, ZeroDivisionError):
            return False  # the row's value is #ERROR!, which filters it out like FALSE

    return predicate
