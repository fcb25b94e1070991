"""Syntax whitelist for `{{ }}` expressions (spec §8.4: no assignment, allocation, functions).

An expression must be *one side-effect-free JavaScript expression*. Beyond 8x8 we allow two
things 8x8 forbids, each in one syntactic place only (see `_check_arrow` and `_check_new`):
- an arrow function as the FIRST argument of `.map`, `.filter`, `.some`, `.every`, `.find` or
  `.reduce`, with plain-name parameters and an expression body. Such an arrow has no name and can
  never become a value an expression holds (it is not returned, stored, or passed anywhere but to
  the built-in that calls it), so no expression can call it again: no recursion, and the
  jail's time and memory limits bound the loops the built-ins run;
- `new Date(...)` with 0 to 7 arguments (the jail's `Date` reads the engine's clock).

We parse an expression with tree-sitter-javascript, wrapped as `(` + source + `\\n)` exactly
as the jail wraps it, and accept only whitelisted node types: anything unknown is rejected,
so a newer grammar cannot widen what runs. This is what makes the jail's re-run protocol
for helper calls correct; it also keeps expressions from assigning to the realm their step's
batch shares (the jail freezes the hot prototypes against mutation through calls such as
`Object.assign`).
"""

from __future__ import annotations

import codecs
import functools
import re
import threading

import tree_sitter_javascript
from tree_sitter import Language, Node, Parser

_LANGUAGE = Language(tree_sitter_javascript.language())

# Node types that may appear anywhere in an expression.
_ALLOWED = frozenset(
    {
        # literals
        "number", "string", "string_fragment", "escape_sequence", "template_string",
        "template_substitution", "regex", "regex_pattern", "regex_flags", "true", "false",
        "null", "undefined", "array", "object", "pair", "computed_property_name",
        "shorthand_property_identifier", "spread_element", "comment",
        # names and access
        "identifier", "property_identifier", "member_expression", "subscript_expression",
        "optional_chain", "call_expression", "arguments",
        # operators
        "parenthesized_expression", "binary_expression", "unary_expression",
        "ternary_expression",
    }
)  # fmt: skip

# Node types we reject with a specific message; anything else unknown is "X is not allowed".
_FORBIDDEN = {
    "assignment_expression": "assignment",
    "augmented_assignment_expression": "assignment",
    "update_expression": "increment/decrement (++/--)",
    "new_expression": "'new' (only new Date(...) is allowed)",
    "function_expression": "function",
    "function": "function",
    "generator_function": "generator function",
    "method_definition": "method definition",
    "class": "class",
    "yield_expression": "'yield'",
    "await_expression": "'await'",
    "sequence_expression": "sequence expression (a, b)",
    "import": "import",
    "meta_property": "import.meta / new.target",
    "this": "'this'",
    "super": "'super'",
    "private_property_identifier": "private name",
    "jsx_element": "JSX",
    "jsx_self_closing_element": "JSX",
}

_STATEMENTS = {
    "for_statement": "loop",
    "for_in_statement": "loop",
    "while_statement": "loop",
    "do_statement": "loop",
    "lexical_declaration": "declaration",
    "variable_declaration": "declaration",
    "function_declaration": "function declaration",
    "generator_function_declaration": "function declaration",
    "class_declaration": "class declaration",
    "import_statement": "import",
    "export_statement": "export",
}

# Names that lead out of the data and into the realm's machinery (code generation, prototypes).
FORBIDDEN_NAMES = frozenset(
    {
        "eval", "Function", "constructor", "__proto__", "prototype", "__defineGetter__",
        "__defineSetter__", "__lookupGetter__", "__lookupSetter__",
    }
)  # fmt: skip

# Problems that start with this are syntax errors (code 5012), the others forbidden constructs.
SYNTAX_ERROR_PREFIX = "invalid JavaScript"

_FORBIDDEN_UNARY = frozenset({"delete"})
# Methods whose first argument may be an arrow function, and that arrow's parameter limit
# (reduce's callback takes four: accumulator, element, index, array).
CALLBACK_METHODS = frozenset({"map", "filter", "some", "every", "find", "reduce"})
_MAX_ARROW_PARAMETERS = 4
# Parameters that would shadow what the whitelist relies on: `Date` (so `new Date` is always the
# jail's clock-reading Date) and `arguments`.
_RESERVED_PARAMETERS = FORBIDDEN_NAMES | {"Date", "arguments"}
_MAX_DATE_ARGUMENTS = 7
ARROW_PLACEMENT = (
    "an arrow function is not allowed here: it may only be the first argument of "
    ".map, .filter, .some, .every, .find or .reduce (e.g. data.items.map(i => i.sku))"
)
_UNICODE_BRACES = re.compile(r"\\u\{([0-9a-fA-F]{1,6})\}")

_local = threading.local()


def _parser() -> Parser:
    """A parser per thread: tree-sitter parsers are not safe to share between threads."""
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = Parser(_LANGUAGE)
    return parser


def forbidden_construct(source: str) -> str | None:
    """Why `source` may not run (e.g. "assignment is not allowed"), or None when it may.

    Pure and cached (definitions repeat the same expressions on every step execution); sources
    longer than any valid expression are checked uncached so they cannot bloat the cache.
    """
    if len(source) > _CACHED_LENGTH:
        return _forbidden_construct(source)
    return _cached(source)


_CACHED_LENGTH = 2000


def _forbidden_construct(source: str) -> str | None:
    if not source.strip():
        return "empty expression"
    try:
        wrapped = ("(" + source + "\n)").encode()
    except UnicodeEncodeError:
        return f"{SYNTAX_ERROR_PREFIX}: the expression contains an unpaired surrogate"
    tree = _parser().parse(wrapped)
    root = tree.root_node
    if root.has_error:
        return _syntax_problem(source, root)
    statement = root.named_children
    if (
        len(statement) != 1
        or statement[0].type != "expression_statement"
        or statement[0].named_child_count != 1
    ):
        return "statements are not allowed; write a single expression"
    return _check(statement[0].named_children[0])


_cached = functools.lru_cache(maxsize=4096)(_forbidden_construct)


def _check(root: Node) -> str | None:
    # (node, whether it is the first argument of a callback method, where an arrow may stand)
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, callback_slot = stack.pop()
        kind = node.type
        if kind == "arrow_function" and callback_slot:
            problem = _check_arrow(node)
            if problem is not None:
                return problem
            body = node.child_by_field_name("body")
            if body is not None:
                stack.append((body, False))
            continue
        if kind == "new_expression":
            problem = _check_new(node)
            if problem is not None:
                return problem
        elif kind == "arrow_function":
            return ARROW_PLACEMENT
        elif kind not in _ALLOWED:
            label = _FORBIDDEN.get(kind, f"'{kind}'")
            return f"{label} is not allowed"
        if kind in ("identifier", "property_identifier", "shorthand_property_identifier"):
            name = node.text.decode() if node.text else ""
            if name in FORBIDDEN_NAMES:
                return f"'{name}' is not allowed"
        elif kind == "unary_expression":
            operator = node.child_by_field_name("operator")
            if operator is not None and operator.type in _FORBIDDEN_UNARY:
                return f"'{operator.type}' is not allowed"
        elif kind in ("subscript_expression", "computed_property_name", "pair"):
            key = node.child_by_field_name("index" if kind == "subscript_expression" else "key")
            if kind == "computed_property_name":
                key = node.named_children[0] if node.named_children else None
            literal = _literal_text(key)
            if literal is not None and literal in FORBIDDEN_NAMES:
                return f"'{literal}' is not allowed"
        for child in node.children:
            if not child.is_named:
                continue
            if kind == "call_expression" and child.type == "arguments" and _is_callback(node):
                # The arguments node holds nothing else to check; comments need no check.
                given = [item for item in child.named_children if item.type != "comment"]
                stack.extend((item, index == 0) for index, item in enumerate(given))
            else:
                stack.append((child, False))
    return None


def _is_callback(call: Node) -> bool:
    """Whether `call` is `x.map(...)` or another callback method (named with a dot)."""
    function = call.child_by_field_name("function")
    if function is None or function.type != "member_expression":
        return False
    method = function.child_by_field_name("property")
    return (
        method is not None
        and method.text is not None
        and (method.text.decode() in CALLBACK_METHODS)
    )


def _check_arrow(arrow: Node) -> str | None:
    """An arrow in a callback slot: plain-name parameters and an expression body, not async."""
    if any(child.type == "async" for child in arrow.children):
        return "an 'async' arrow function is not allowed"
    body = arrow.child_by_field_name("body")
    if body is None or body.type == "statement_block":
        return (
            "an arrow function's body must be an expression, not a { } block (write i => i.qty > 0)"
        )
    single = arrow.child_by_field_name("parameter")
    listed = arrow.child_by_field_name("parameters")
    if single is not None:
        parameters = [single]
    elif listed is not None:
        parameters = [child for child in listed.named_children if child.type != "comment"]
    else:
        parameters = []
    if len(parameters) > _MAX_ARROW_PARAMETERS:
        return f"an arrow function may have at most {_MAX_ARROW_PARAMETERS} parameters"
    for parameter in parameters:
        if parameter.type != "identifier":
            return (
                "arrow function parameters must be plain names "
                "(no default values, destructuring or ...rest)"
            )
        name = parameter.text.decode() if parameter.text else ""
        if name in _RESERVED_PARAMETERS:
            return f"'{name}' may not be an arrow function parameter"
    return None


def _check_new(node: Node) -> str | None:
    """`new` only as `new Date(...)`, with at most seven arguments and no spread."""
    constructor = node.child_by_field_name("constructor")
    if constructor is None or constructor.type != "identifier" or constructor.text != b"Date":
        return "'new' is not allowed (only new Date(...) is)"
    arguments = node.child_by_field_name("arguments")
    if arguments is None:
        return None
    given = [child for child in arguments.named_children if child.type != "comment"]
    if len(given) > _MAX_DATE_ARGUMENTS or any(a.type == "spread_element" for a in given):
        return f"new Date(...) takes 0 to {_MAX_DATE_ARGUMENTS} arguments (no ...spread)"
    return None


def _literal_text(node: Node | None) -> str | None:
    """The value of a string or substitution-free template literal (best effort), else None."""
    if node is None or node.text is None:
        return None
    if node.type == "string" or (
        node.type == "template_string"
        and not any(child.type == "template_substitution" for child in node.children)
    ):
        body = node.text.decode()[1:-1]
        body = _UNICODE_BRACES.sub(lambda match: chr(int(match[1], 16)), body)
        try:
            return codecs.decode(body, "unicode_escape")
        except (UnicodeDecodeError, ValueError):
            return body
    return None


def _syntax_problem(source: str, root: Node) -> str:
    """Explain a parse failure; name the construct when the source is a statement or loop."""
    program = _parser().parse(source.encode()).root_node
    for node in _walk(program):
        label = _STATEMENTS.get(node.type)
        if label is not None:
            return f"{label} is not allowed; write a single expression"
    statements = program.named_children
    if not program.has_error and (
        len(statements) > 1
        or any(node.type != "expression_statement" for node in statements)
        or ";" in source
    ):
        return "statements are not allowed; write a single expression"
    error = _first_error(root)
    where = ""
    if error is not None:
        column = max(error.start_byte - 1, 0)  # minus the '(' we added
        snippet = source.encode()[column : column + 20].decode(errors="replace")
        where = f" near '{snippet}'" if snippet.strip() else " at the end"
    return f"{SYNTAX_ERROR_PREFIX}: syntax error{where}"


def _walk(root: Node) -> list[Node]:
    nodes, stack = [], [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.children)
    return nodes


def _first_error(root: Node) -> Node | None:
    for node in sorted(_walk(root), key=lambda item: item.start_byte):
        if node.is_error or node.is_missing:
            return node
    return None
