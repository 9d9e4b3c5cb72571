"""Python syntax of every supported version, whatever version amplint runs on.

amplint runs on Python 3.9 and later, and the code it checks may be written for a newer Python
than the one running it: ``type X = ...`` and ``def f[T](x: T)`` (PEP 695, 3.12), f-strings
that nest the same quotes or hold backslashes and comments (PEP 701, 3.12), ``match`` (3.10),
``except*`` and ``a[*b]`` (3.11), t-strings and ``except A, B:`` (3.14). Such a file is valid
code, not a parse error.

* :func:`parse_problem` checks a file with Python's own parser first (fast, and the guard
  against inputs that make libcst's parser take seconds or crash). Only when that fails does it
  ask libcst's parser, which reads the grammar of every version; when libcst accepts the file,
  the constructs newer than the running Python are set aside (blanked, line numbers kept) and
  Python's parser checks the rest, so code that is invalid in every version is still an error.
  Nesting deeper than Python allows is an error without asking libcst.
* :func:`code_only` lexes strings and comments by the newest rules (PEP 701 f-strings), the
  same on every Python version, for the regular-expression passes of the project and engine.
"""

from __future__ import annotations

import re

# Python's tokenizer refuses more than this many nested brackets (MAXLEVEL), in every version.
MAX_NESTING = 200

_PREFIX_LETTERS = frozenset("rRbBuUfFtT")
# String literals a switch is written with ('float16', "--amp"); any other string is blanked.
_WORD_STRING = re.compile(r"""[rRbBuU]?(['"])[\w-]*\1""")
_CODE = re.compile(r"""[#'"]""")
# Inside an f-string replacement field: strings, comments, brackets, the format spec's ':'.
_FIELD = re.compile(r"""[#'"()\[\]{}:\\]""")
_END_OF_LINE = re.compile(r"[\r\n]")
_BRACKETS = re.compile(r"[()\[\]{}]")


def _stops(quote: str, extra: str) -> re.Pattern[str]:
    """Where a string body with this quote can end or change: backslash, quote, ``extra``, and
    for single-quoted strings the end of the line."""
    extra = f"|[{re.escape(extra)}]" if extra else ""
    eol = "" if len(quote) == 3 else r"|[\r\n]"
    return re.compile(rf"\\|{re.escape(quote)}{extra}{eol}")


_PLAIN = {q: _stops(q, "") for q in ("'", '"', "'''", '"""')}
_LITERAL = {q: _stops(q, "{}") for q in _PLAIN}


class _Malformed(Exception):
    """A string, f-string field or format spec that does not end, or a stray bracket in a field:
    not valid in any version. ``at`` is where it starts (an index of the source)."""

    def __init__(self, at: int) -> None:
        super().__init__(at)
        self.at = at


def code_only(source: str) -> str | None:
    """``source`` with comments removed, string literals other than single words (dtype names,
    option flags) replaced by ``''`` and the literal text of f-strings and t-strings removed
    (their replacement fields stay: they are code). None when a string does not end.

    Strings are lexed by PEP 701's rules on every Python version, so a 3.12 f-string such as
    ``f"{", ".join(names)}"`` is one string here also on Python 3.11."""
    code, malformed = _lexed(source)
    return code if malformed is None else None


def _lexed(source: str) -> tuple[str, int | None]:
    """``code_only``'s text, up to the first string that does not end (and where it starts)."""
    out: list[str] = []
    try:
        _lex(source, out)
    except _Malformed as error:
        return "".join(out), error.at
    return "".join(out), None


def _lex(source: str, out: list[str]) -> None:
    """Append the pieces of ``code_only``'s result to ``out``; raises _Malformed (``out`` then
    holds the code up to the malformed string)."""
    # Open f-string parts, innermost last: ("field", bracket depth), ("literal", quote) for the
    # text of an f-string, ("spec", quote) for a format spec.
    stack: list[list] = []
    i = 0
    while True:
        if not stack or stack[-1][0] == "field":
            i = _lex_code(source, i, out, stack)
            if i < 0:
                return
        else:
            i = _lex_literal(source, i, out, stack)


def _lex_code(source: str, i: int, out: list[str], stack: list[list]) -> int:
    """Code, at the top or in a replacement field, up to the next change of mode (-1: the end)."""
    field = stack[-1] if stack else None
    pattern = _FIELD if field else _CODE
    while True:
        match = pattern.search(source, i)
        if match is None:
            if stack:
                raise _Malformed(i)
            out.append(source[i:])
            return -1
        j = match.start()
        char = source[j]
        if char == "#":
            out.append(source[i:j])
            end = _END_OF_LINE.search(source, j)
            i = end.start() if end else len(source)
            continue
        if char in "'\"":
            return _lex_string(source, i, j, out, stack)
        assert field is not None
        if char == "\\":  # a line continuation
            out.append(source[i : j + 2])
            i = j + 2
            continue
        out.append(source[i : j + 1])
        i = j + 1
        if char in "([{":
            field[1] += 1
        elif field[1]:
            if char != ":":
                field[1] -= 1
        elif char == "}":
            stack.pop()
            return i
        elif char == ":":
            stack.append(["spec", *stack[-2][1:]])
            return i
        else:
            raise _Malformed(j)  # a ) or ] closing nothing


def _lex_string(source: str, i: int, j: int, out: list[str], stack: list[list]) -> int:
    """A string literal whose quote is at ``j`` (its prefix, if any, just before)."""
    start = j
    while start > i and j - start < 2 and source[start - 1] in _PREFIX_LETTERS:
        start -= 1
    if start < j and start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start = j  # the letters end a name (``elif"x"``), they are no prefix
    quote = source[j] * 3 if source.startswith(source[j] * 3, j) else source[j]
    prefix = source[start:j].lower()
    body = j + len(quote)
    if "f" in prefix or "t" in prefix:
        out.append(source[i:body])
        stack.append(["literal", quote, "r" in prefix])
        return body
    out.append(source[i:start])
    end = _string_end(source, body, quote)
    if end < 0:
        raise _Malformed(start)
    literal = source[start:end]
    out.append(literal if _WORD_STRING.fullmatch(literal) else "''")
    return end


def _string_end(source: str, i: int, quote: str) -> int:
    """Where the string whose body starts at ``i`` ends (-1: it does not)."""
    stops = _PLAIN[quote]
    while True:
        match = stops.search(source, i)
        if match is None or match.group() in "\r\n":
            return -1
        if match.group() == "\\":
            i = match.start() + 2
        else:
            return match.end()


def _lex_literal(source: str, i: int, out: list[str], stack: list[list]) -> int:
    """The text of an f-string or of a format spec (removed), up to a field or the end."""
    kind, quote, raw = stack[-1]
    stops = _LITERAL[quote]
    while True:
        match = stops.search(source, i)
        if match is None or match.group() in "\r\n":
            raise _Malformed(i)
        j, found = match.start(), match.group()
        if found == "\\":
            after = source[j + 1 : j + 2]
            if after in ("{", "}"):
                i = j + 1  # a backslash escapes no brace: "\{x}" holds a field
            elif after == "N" and not raw and source.startswith("{", j + 2):
                i = source.find("}", j) + 1 or len(source)  # "\N{DEGREE SIGN}"
            else:
                i = j + 2
        elif kind == "literal" and found in "{}" and source.startswith(found * 2, j):
            i = j + 2  # a literal {{ or }}
        elif found == "{":
            out.append("{")
            stack.append(["field", 0])
            return j + 1
        elif found == "}":
            if kind != "spec":
                raise _Malformed(j)  # a single } in f-string text
            out.append("}")
            stack.pop()  # the spec
            stack.pop()  # its field
            return j + 1
        elif kind == "spec":
            raise _Malformed(j)  # the quote ends the string inside a format spec
        else:
            out.append(found)
            stack.pop()
            return match.end()


def nesting(source: str) -> int:
    """The deepest nesting of brackets and f-string replacement fields, in the code up to a
    string that does not end, if any. Cheap: one pass with strings and comments taken out."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_lexed(source)[0]):
        if match.group() in "([{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_problem(source: str) -> str | None:
    """Why ``source`` is not valid Python in any supported version (one line), or None.

    Python's own parser decides alone when it accepts the file or refuses it for nesting; else
    libcst's parser is asked (after a cheap check of the nesting, which libcst needs seconds
    for, or crashes on), and a file it accepts is checked again by Python's parser with the
    constructs newer than this Python set aside."""
    error = _python_error(source)
    if error is None or not isinstance(error, SyntaxError) or _nesting_error(error):
        return _describe(error)
    depth = nesting(source)
    if depth > MAX_NESTING:
        return f"too deeply nested to parse ({depth} nested brackets; Python allows {MAX_NESTING})"
    import libcst as cst

    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as newest:
        if not _newer_syntax_at(source, error):
            return _describe(error)  # Python's message names the mistake better
        return _syntax(*_libcst_error(newest, source))
    except cst.CSTValidationError:  # parsed, then refused by this Python's own rules (a name)
        return _describe(error)
    except (RecursionError, MemoryError):
        return "too deeply nested to parse"
    return _describe(_python_error(_set_aside_newer_syntax(module, source)))


def _python_error(source: str) -> Exception | None:
    import ast
    import warnings

    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and friends are not ours
            warnings.simplefilter("ignore")
            ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError) as error:
        return error
    return None


def _nesting_error(error: SyntaxError) -> bool:
    """Python's limits on nesting ("too many nested parentheses", "... levels of indentation",
    "too many nested f-strings"), which hold in every version."""
    return (error.msg or "").startswith("too many") or "nested too deeply" in (error.msg or "")


# The start of a line written in syntax newer than Python 3.9, or a 3.12 f-string message.
_NEWER_LINE = re.compile(
    r"\s*(?:type\s+\w|(?:async\s+)?def\s+\w+\s*\[|class\s+\w+\s*\[|match\b|case\b|except\s*\*"
    r"|except\b[^:(]*,)|.*(?<![\w'\"])[tT][rR]?['\"]"
)


def _newer_syntax_at(source: str, error: SyntaxError) -> bool:
    """Whether the line Python stopped at looks like syntax of a newer Python (then libcst's
    message names the real mistake, elsewhere; otherwise Python's is the better one)."""
    if (error.msg or "").startswith("f-string"):
        return True
    lines = _LINE_BREAK.split(source)
    number = (error.lineno or 1) - 1
    return 0 <= number < len(lines) and bool(_NEWER_LINE.match(lines[number]))


def _describe(error: Exception | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, SyntaxError):
        return _syntax(error.lineno, error.offset, error.msg)
    if isinstance(error, (RecursionError, MemoryError)):
        return "too deeply nested to parse"
    return f"cannot parse: {error}"  # null bytes before Python 3.12


def _syntax(line: int | None, column: int | None, message: str) -> str:
    if line is None:
        return f"syntax error: {message}"
    return f"syntax error at {line}:{column}: {message}"


_LIBCST_AT = re.compile(r"^(?:parser error: )?error at (\d+):(\d+): ")


def _libcst_error(error, source: str) -> tuple[int, int, str]:
    """Line, 1-based column and message of a libcst ParserSyntaxError (its tokenizer errors
    carry no position: that of the string that does not end, if there is one)."""
    message = error.message.splitlines()[0] if error.message else "invalid syntax"
    found = _LIBCST_AT.match(message)
    if found:
        line, column, message = int(found.group(1)), int(found.group(2)) + 1, message[found.end() :]
    else:
        line, column = error.raw_line, error.raw_column + 1
        message = message.replace("tokenizer error: ", "")
        malformed = _lexed(source)[1]
        if malformed is not None:
            line = source.count("\n", 0, malformed) + 1
            column = malformed - max(source.rfind("\n", 0, malformed), -1)
    if message.startswith("expected one of ") and message.count(",") > 5:
        message = "invalid syntax"  # libcst lists every token the grammar allows there
    return line, column, message


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _set_aside_newer_syntax(module, source: str) -> str:
    """``source`` with the constructs newer than Python 3.9 that libcst parsed blanked out, line
    numbers kept: ``type`` aliases, ``match``, ``try``/``except*`` and ``except A, B:``
    statements become ``pass``; type parameters become spaces; f-strings and t-strings become
    empty strings; the ``*`` of ``a[*b]`` and ``*args: *Ts`` becomes a space. What remains is
    for Python's own parser to check (libcst accepts a few things no version does)."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    statements = _kinds(cst, "TypeAlias", "Match", "TryStar")
    strings = _kinds(cst, "FormattedString", "TemplatedString")
    parameters = _kinds(cst, "TypeParameters")
    # (libcst counts a line after the last line break, also when the source ends without one)
    starts = [0] + [match.end() for match in _LINE_BREAK.finditer(source)] + [len(source)]
    edits: list[tuple[int, int, str]] = []
    ranges = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for node, where in ranges.items():
        start = starts[where.start.line - 1] + where.start.column
        end = starts[where.end.line - 1] + where.end.column
        breaks = "".join(_LINE_BREAK.findall(source, start, end))
        if isinstance(node, statements) or (
            isinstance(node, cst.Try) and any(_bare_tuple(h.type) for h in node.handlers)
        ):
            edits.append((start, end, "pass" + breaks))
        elif isinstance(node, strings):
            edits.append((start, end, f"'''{breaks}'''" if breaks else "''"))
        elif isinstance(node, parameters):
            edits += _drop_type_parameters(source, start, end, breaks)
        elif (isinstance(node, cst.Index) and node.star) or (
            isinstance(node, cst.Annotation) and isinstance(node.annotation, cst.StarredElement)
        ):
            star = source.index("*", start)
            edits.append((star, star + 1, " "))
    pieces, last = [], 0
    for start, end, text in sorted(edits, key=lambda edit: (edit[0], -edit[1])):
        if start >= last:  # an edit inside one already made (an f-string in a match) is moot
            pieces += [source[last:start], text]
            last = end
    pieces.append(source[last:])
    return "".join(pieces)


def _kinds(cst, *names: str) -> tuple[type, ...]:
    """The libcst node classes of these names that the installed libcst has."""
    return tuple(getattr(cst, name) for name in names if hasattr(cst, name))


def _bare_tuple(node) -> bool:
    """``A, B`` without parentheses (``except A, B:``, Python 3.14)."""
    import libcst as cst

    return isinstance(node, cst.Tuple) and not node.lpar


def _drop_type_parameters(source: str, start: int, end: int, breaks: str) -> list:
    """Edits removing ``[T]`` after a function or class name; line breaks inside it move into
    the brackets that follow (added for a class without bases)."""
    if not breaks:
        return [(start, end, "")]
    after = source.find("(", end)
    if after >= 0 and not source[end:after].strip():
        return [(start, end, ""), (after + 1, after + 1, breaks)]
    return [(start, end, f"({breaks})")]
