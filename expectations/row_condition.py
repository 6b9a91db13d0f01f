"""GE's `row_condition` with `condition_parser: "pandas"`: the text of a pandas query, parsed (never evaluated)
into transforms.conditions masks.

The forms people write are supported: a column compared with a literal (`fare > 100`, `"Cash" == payment_type`,
`1 <= passengers <= 4`), `&` / `and`, `|` / `or`, `~` / `not`, parentheses, `col.isin([...])`,
`col.isnull()` / `isna()` / `notnull()` / `notna()`, and column names in backticks (`` `trip miles` > 2 ``).
Anything else (arithmetic, two columns compared, function calls, attribute access) is refused with a message:
the text is parsed with Python's `ast` and only these node shapes are accepted, so nothing in it runs.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize

from transforms.conditions import OPERATORS, All, Any, Compare, IsIn, IsNull, Not

_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NULL_METHODS = {"isnull": False, "isna": False, "notnull": True, "notna": True}
_BACKTICKED = re.compile(r"`([^`]+)`")
assert set(_OPS.values()) == set(OPERATORS)


class ConditionError(ValueError):
    """A row_condition nanguard cannot evaluate; the message says what is supported."""


def parse_condition(text: str, columns: list[str]):
    """The condition tree of a pandas-query row_condition over `columns`; ConditionError when unsupported."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("row_condition must be a non-empty string")
    names: dict[str, str] = {}

    def placeholder(m: re.Match) -> str:
        names[f"__col{len(names)}"] = m.group(1)
        return f"__col{len(names) - 1}"

    try:
        tree = ast.parse(_pandas_precedence(_BACKTICKED.sub(placeholder, text.strip())), mode="eval").body
    except (SyntaxError, tokenize.TokenError):
        raise ConditionError(f"row_condition {text!r} is not a pandas query nanguard can parse") from None
    return _Parser(text, names, set(columns)).node(tree)


def _pandas_precedence(text: str) -> str:
    """`&` and `|` as `and` and `or`: pandas gives them the precedence of the boolean operators (below the
    comparisons), so `b >= 1 & a.notnull()` means `(b >= 1) and a.notnull()`, as pandas.eval rewrites it."""
    tokens = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in ("&", "|"):
            tok = tok._replace(string=" and " if tok.string == "&" else " or ")
        tokens.append((tok.type, tok.string))
    return tokenize.untokenize(tokens)


class _Parser:
    def __init__(self, text: str, names: dict, columns: set):
        self.text, self.names, self.columns = text, names, columns

    def refuse(self, what: str):
        raise ConditionError(f"row_condition {self.text!r}: {what}. Supported: a column compared with a literal "
                             f"(==, !=, <, <=, >, >=), &, |, ~ (and, or, not), parentheses, col.isin([...]), "
                             f"col.isnull()/notnull()")

    def column(self, node) -> str:
        if not isinstance(node, ast.Name):
            self.refuse(f"'{ast.unparse(node)}' is not a column name")
        name = self.names.get(node.id, node.id)
        if name not in self.columns:
            self.refuse(f"column '{name}' is not in the input")
        return name

    def literal(self, node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and \
                isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
            return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
            return node.value
        self.refuse(f"'{ast.unparse(node)}' is not a number, string or boolean literal")

    def node(self, node):
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.node(v) for v in node.values)
            return All(parts) if isinstance(node.op, ast.And) else Any(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            parts = (self.node(node.left), self.node(node.right))
            return All(parts) if isinstance(node.op, ast.BitAnd) else Any(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
            return Not(self.node(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return self.method(node)
        self.refuse(f"'{ast.unparse(node)}' is not supported")

    def compare(self, node: ast.Compare):
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators):
            if type(op) not in _OPS:
                self.refuse(f"operator '{ast.unparse(node)}' is not supported")
            symbol = _OPS[type(op)]
            if isinstance(left, ast.Name) and not isinstance(right, ast.Name):
                parts.append(Compare(self.column(left), symbol, self.literal(right)))
            elif isinstance(right, ast.Name) and not isinstance(left, ast.Name):
                parts.append(Compare(self.column(right), _FLIPPED[symbol], self.literal(left)))
            else:
                self.refuse(f"'{ast.unparse(node)}' must compare one column with one literal")
            left = right
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def method(self, node: ast.Call):
        name, column = node.func.attr, self.column(node.func.value)
        if name in _NULL_METHODS and not node.args and not node.keywords:
            return Not(IsNull(column)) if _NULL_METHODS[name] else IsNull(column)
        if name == "isin" and len(node.args) == 1 and not node.keywords and \
                isinstance(node.args[0], (ast.List, ast.Tuple, ast.Set)):
            return IsIn(column, tuple(self.literal(v) for v in node.args[0].elts))
        self.refuse(f"method '{ast.unparse(node)}' is not supported")
