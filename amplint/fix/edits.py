"""Edits the fixers share: insert a statement, move one into a block, add a keyword argument.

Each builder changes the updated node it is given (so edits nested in it survive) and leaves
every other byte alone: comments above a statement stay where they are, new lines take the
indentation of their block.
"""

from __future__ import annotations

import libcst as cst

from amplint.fix.api import Edit, Unfixable


def insert_before(statement: cst.BaseStatement, new: cst.BaseStatement, key: str) -> Edit:
    """``new`` just before ``statement``, after the comments above it (and ``new``'s own)."""

    def change(updated: cst.CSTNode) -> cst.FlattenSentinel:
        assert isinstance(updated, cst.BaseStatement)
        leading = (*updated.leading_lines, *new.leading_lines)
        return cst.FlattenSentinel(
            [new.with_changes(leading_lines=leading), updated.with_changes(leading_lines=())]
        )

    return Edit(statement, change, key)


def insert_after(statement: cst.BaseStatement, new: cst.BaseStatement, key: str) -> Edit:
    """``new`` just after ``statement``."""
    return Edit(statement, lambda updated: cst.FlattenSentinel([updated, new]), key)


def remove(statement: cst.BaseStatement, key: str) -> Edit:
    return Edit(statement, lambda updated: cst.RemovalSentinel.REMOVE, key)


def append_to_body(block: cst.BaseCompoundStatement, new: cst.BaseStatement, key: str) -> Edit:
    """``new`` as the last statement of a compound statement's (indented) body."""

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.BaseCompoundStatement)
        body = updated.body
        if not isinstance(body, cst.IndentedBlock):
            raise Unfixable("the block is written on one line")
        return updated.with_changes(body=body.with_changes(body=[*body.body, new]))

    if not isinstance(block.body, cst.IndentedBlock):
        raise Unfixable("the block is written on one line")
    return Edit(block, change, key)


def comments_only(statement: cst.BaseStatement) -> cst.BaseStatement:
    """The statement without the blank lines above it (its comments stay), for moving it."""
    lines = [line for line in statement.leading_lines if line.comment is not None]
    return statement.with_changes(leading_lines=lines)


def add_keyword(call: cst.Call, keyword: str, value: cst.BaseExpression, key: str) -> Edit:
    """``call(..., keyword=value)``, following the call's own layout (one argument per line, a
    trailing comma, comments after the last argument, spaces around ``=``)."""
    if any(arg.star == "**" for arg in call.args):
        raise Unfixable(f"the call passes **kwargs, which may hold {keyword}")

    def change(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Call)
        args = list(updated.args)
        equal = next(
            (a.equal for a in args if isinstance(a.equal, cst.AssignEqual)),
            cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=cst.SimpleWhitespace(""),
            ),
        )
        new = cst.Arg(value=value, keyword=cst.Name(keyword), equal=equal)
        if not args:
            return updated.with_changes(args=[new])
        last = args[-1]
        separator = _separator(updated, args)
        if isinstance(last.comma, cst.Comma):  # a trailing comma: one after the new argument too
            after = last.comma.whitespace_after
            last_comma, after = _split_line(last.comma, after, separator)
            new = new.with_changes(comma=cst.Comma(whitespace_after=after))
        else:
            after = last.whitespace_after_arg
            last_comma, after = _split_line(cst.Comma(), after, separator)
            new = new.with_changes(whitespace_after_arg=after)
            last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
        return updated.with_changes(args=[*args[:-1], last.with_changes(comma=last_comma), new])

    return Edit(call, change, key)


def _separator(call: cst.Call, args: list[cst.Arg]) -> cst.Comma:
    """The comma between two arguments of this call."""
    if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
        return args[-2].comma
    after = call.whitespace_before_args
    if isinstance(after, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=after)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _split_line(comma: cst.Comma, after, separator: cst.Comma):
    """Whitespace that ended the argument list (``after``) now ends the new argument; the old
    last argument keeps its line's comment and continues like the other arguments."""
    if not isinstance(after, cst.ParenthesizedWhitespace):
        return separator, after
    between = separator.whitespace_after
    indent = between.last_line if isinstance(between, cst.ParenthesizedWhitespace) else None
    kept = after.with_changes(last_line=indent or after.last_line)
    closing = cst.ParenthesizedWhitespace(indent=after.indent, last_line=after.last_line)
    return comma.with_changes(whitespace_after=kept), closing
