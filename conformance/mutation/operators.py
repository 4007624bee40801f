"""Which mutation operators the gate is measured with, and the one Cosmic Ray lacks.

Cosmic Ray's core operators replace each binary and comparison operator with every
other one (1,500 of the ~1,850 mutants of the four files).  Most of those are killed by
the first case that decodes a frame, so they measure nothing but cost a pytest run
each.  :data:`SELECTED` keeps the standard selective set instead (Offutt et al.,
"An experimental determination of sufficient mutant operators", 1996): one replacement
per arithmetic, shift and bitwise operator, the boundary and negation shift of each
comparison, logical connector swap, condition negation, unary deletion, constant
+1/-1, boolean flip, break/continue swap, exception replacement and zero-iteration
loops.

The state table (``smuxref/_state.py``) is data, not code: no core operator touches a
row, yet a wrong row is the defect the table exists to prevent.  So this module adds
``smuxref/ReplaceEnumMember``, registered with Cosmic Ray through the
``cosmic_ray.operator_providers`` entry point: it replaces one member of the state
table's enums or of ``Cmd`` (``S.OPEN``, ``E.DELIVER``, ``Cmd.PSH``) with the next
member of the same enum.  One replacement per site, like the constant operator's +1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Any, Final

import parso.python.tree
from cosmic_ray.operators.operator import Example, Operator

from smuxref import Cmd
from smuxref._state import Effect, StreamInput, StreamState

__all__ = ["SELECTED", "ReplaceEnumMember", "SmuxrefOperators", "is_selected"]

#: Operator names (regular expressions, matched whole) kept out of Cosmic Ray's ~200.
SELECTED: Final = (
    r"core/ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Add|Div_Mul|FloorDiv_Mul|Mod_FloorDiv"
    r"|Pow_Mul|LShift_RShift|RShift_LShift|BitOr_BitAnd|BitAnd_BitOr|BitXor_BitOr)",
    r"core/ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt"
    r"|Is_IsNot|IsNot_Is)",
    r"core/ReplaceUnaryOperator_(Delete_Not|Delete_USub|Delete_Invert|USub_UAdd)",
    r"core/(AddNot|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd)",
    r"core/(ReplaceBreakWithContinue|ReplaceContinueWithBreak|ExceptionReplacer)",
    r"core/(NumberReplacer|ZeroIterationForLoop)",
    r"smuxref/ReplaceEnumMember",
)
_SELECTED_RE: Final = re.compile("|".join(f"(?:{p})" for p in SELECTED))

#: The enums whose members a mutant may swap, by class name.
_ENUMS: Final[dict[str, type[Enum]]] = {
    e.__name__: e for e in (StreamState, StreamInput, Effect, Cmd)
}


def is_selected(operator_name: str) -> bool:
    """Whether mutants of this Cosmic Ray operator are part of the measurement."""
    return _SELECTED_RE.fullmatch(operator_name) is not None


_alias_cache: list[tuple[Any, dict[str, type[Enum]]]] = []


def _aliases(module: Any) -> dict[str, type[Enum]]:
    """Enum names usable in ``module``: the classes and module-level ``S = StreamState``
    (computed once per parsed module: the visitor asks for every trailer)."""
    if _alias_cache and _alias_cache[0][0] is module:
        return _alias_cache[0][1]
    names = dict(_ENUMS)
    for stmt in module.children:
        if stmt.type != "simple_stmt":
            continue
        expr = stmt.children[0]
        if expr.type != "expr_stmt" or len(expr.children) != 3:
            continue
        target, operator, value = expr.children
        is_alias = target.type == "name" and operator.value == "=" and value.type == "name"
        if is_alias and value.value in _ENUMS:
            names[target.value] = _ENUMS[value.value]
    _alias_cache[:] = [(module, names)]
    return names


def _next_member(enum: type[Enum], name: str) -> str:
    members = list(enum.__members__)
    return members[(members.index(name) + 1) % len(members)]


class ReplaceEnumMember(Operator):  # type: ignore[misc]  # Cosmic Ray is untyped
    """Replace ``Enum.MEMBER`` by the next member of the same enum (a table row's effect,
    next state or input, a command compared against)."""

    def mutation_positions(self, node: Any) -> Iterator[tuple[Any, Any]]:
        member = self._member(node)
        if member is not None:
            yield (member.start_pos, member.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        member = self._member(node)
        assert member is not None
        assert index == 0
        enum = _aliases(node.get_root_node())[node.get_previous_sibling().value]
        replacement = parso.python.tree.Name(
            _next_member(enum, member.value), member.start_pos, member.prefix
        )
        node.children[1] = replacement
        replacement.parent = node
        return node

    @staticmethod
    def _member(node: Any) -> Any:
        """The member name of a ``Name.MEMBER`` trailer on a known enum, else None."""
        if node.type != "trailer" or node.children[0].value != ".":
            return None
        base = node.get_previous_sibling()
        if base is None or base.type != "name":
            return None
        enum = _aliases(node.get_root_node()).get(base.value)
        member = node.children[1]
        if enum is None or member.value not in enum.__members__:
            return None
        return member

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("x = StreamState.OPEN", "x = StreamState.LOCAL_CLOSED"),
            Example("S = StreamState\nx = S.LOCAL_CLOSED", "S = StreamState\nx = S.REMOTE_CLOSED"),
            Example("if cmd is Cmd.UPD: pass", "if cmd is Cmd.SYN: pass"),
        )


class SmuxrefOperators:
    """Cosmic Ray operator provider (entry point ``cosmic_ray.operator_providers``)."""

    _operators: Final = {"ReplaceEnumMember": ReplaceEnumMember}

    def __iter__(self) -> Iterator[str]:
        return iter(self._operators)

    def __getitem__(self, name: str) -> type[Operator]:
        return self._operators[name]
