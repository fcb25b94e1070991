"""A definition as a graph: deterministic server-side layout and its SVG rendering.

Pure (no I/O, standard library only). `layout` takes the `steps` of a definition, canonical or
tolerant (odd key case, missing keys, unknown step types, dangling successors, duplicate ids),
and returns positioned nodes and routed edges; `render_svg` draws them for the console.

The layout is a simplified Sugiyama. Back edges (loops) are the edges inside a cycle that
lead to a step written earlier in the definition; they are set aside and drawn around the
right side, each in a lane of its own. The steps reached from the entry (the first step) are
ranked by their longest path from it; steps nothing reaches sit just above where they lead.
The steps of an `If`'s `do` branches rank below the `If`, and whatever follows the `If` ranks
below all of them. Edges spanning several ranks pass through virtual nodes; a few barycenter
sweeps order each rank (the order with the fewest crossings wins); x positions come from
alternating downward and upward passes, each moving a rank as close to its neighbours as the
minimum gaps allow (a least-squares fit under order constraints), so boxes never overlap. Ties
are always broken by the order of the steps in the definition: the same input gives the same
output, byte for byte.

Coordinates: `Node.x`/`Node.y` are the top-left corner; y grows downwards (top-to-bottom flow).
Every text that comes from the definition is escaped by `render_svg` (and stripped of the
characters XML cannot carry); the SVG has no `style` attribute and no script, so it is safe
under a strict Content-Security-Policy: its look comes from the console's stylesheet.
"""

from __future__ import annotations

import heapq
import html
import itertools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

STEP_TYPES = (
    "SMS",
    "ChatAppsMessage",
    "HttpRequest",
    "Branch",
    "If",
    "Wait",
    "WaitForReply",
    "VoiceMessage",
    "WaitForDTMF",
)
UNKNOWN_TYPE = "Unknown"
MISSING_TYPE = "Missing"
EDGE_KINDS = ("next", "select", "default", "do", "after", "missing")

NODE_WIDTH = 180.0
NODE_HEIGHT = 64.0
GHOST_WIDTH = 160.0
GHOST_HEIGHT = 40.0
RANK_GAP = 72.0  # vertical space between two ranks: edges and their labels live there
MARGIN = 24.0
LANE_OFFSET = 28.0  # distance from the rightmost node to the first back-edge lane
LANE_GAP = 14.0
NODE_LABEL_CHARS = 120  # Node.label
EDGE_LABEL_CHARS = 40  # Edge.label
SWEEPS = 8
_ROUNDS = 3  # pairs of downward and upward passes placing the x positions

# Minimum horizontal gap between neighbours in a rank: real nodes, a node and a virtual node
# (a long edge passing through the rank), two virtual nodes.
_GAP_NODES = 48.0
_GAP_MIXED = 24.0
_GAP_VIRTUAL = 14.0

# Drawing (render_svg).
_FONT_SIZE = 12
_TYPE_CHARS = 26
_ID_CHARS = 26
_TEXT_CHARS = 28
_EDGE_TEXT_CHARS = 28
_EDGE_CHAR_WIDTH = 5.6  # estimate for the 10px edge labels, to keep them inside the view
_SVG_NS = "http://www.w3.org/2000/svg"
# Presentation attributes, so that the SVG reads without the stylesheet too (a downloaded copy,
# a stylesheet that failed to load). They are not `style` and not subject to CSP; any CSS rule
# for the same property overrides them.
_INK = "#5f6670"
_BOX = f'fill="#ffffff" stroke="{_INK}"'
_GHOST_BOX = f'fill="#ffffff" stroke="{_INK}" stroke-dasharray="4 3"'

_STEP_TYPE_NAMES = {name.lower(): name for name in STEP_TYPES}
# Characters XML 1.0 cannot carry, even escaped (and lone surrogates, which cannot be encoded).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
_ONE_EXPRESSION = re.compile(r"\{\{(.*)\}\}", re.DOTALL)
_CLASS_UNSAFE = re.compile(r"[^a-z0-9-]")


@dataclass(frozen=True)
class Node:
    """A step (or the ghost of a missing successor), its box's top-left corner and size."""

    id: str
    step_type: str  # one of STEP_TYPES, "Unknown", or "Missing" (ghost of a dangling target)
    label: str  # the key input, shortened (SMS/chat text, "METHOD url", duration, ...)
    x: float
    y: float
    width: float
    height: float
    parent: str | None  # the If whose do-branch holds it
    entry: bool  # the first step of the definition


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # one of EDGE_KINDS
    label: str  # condition text (shortened) for "select", "default" for a null condition
    points: tuple[tuple[float, float], ...]  # polyline from the source box to the target box


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float


# --------------------------------------------------------------------------------- reading


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _one_line(text: str, limit: int) -> str:
    return _shorten(_SPACES.sub(" ", _clean(text)).strip(), limit)


def _field(source: Any, key: str) -> Any:
    """`source[key]`, else the first non-null value under the same key in another letter case."""
    if not isinstance(source, dict):
        return None
    value = source.get(key)
    if value is not None:
        return value
    lowered = key.lower()
    for name, candidate in source.items():
        if isinstance(name, str) and name.lower() == lowered and candidate is not None:
            return candidate
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return ""


def _step_type(raw: dict[str, Any]) -> str:
    value = _field(raw, "stepType")
    if isinstance(value, str):
        return _STEP_TYPE_NAMES.get(value.strip().lower(), UNKNOWN_TYPE)
    return UNKNOWN_TYPE


def _step_label(step_type: str, raw: dict[str, Any]) -> str:
    inputs = _field(raw, "inputs")
    text = ""
    if step_type == "SMS":
        text = _scalar(_field(inputs, "text"))
    elif step_type == "ChatAppsMessage":
        content = _field(inputs, "content")
        kind = _scalar(_field(inputs, "type"))
        if isinstance(content, str):
            text = content
        elif isinstance(content, dict):
            text = _scalar(_field(content, "text"))
            template = _field(content, "template")
            if not text and isinstance(template, dict):
                name = _scalar(_field(template, "name"))
                text = f"template {name}" if name else ""
        text = text or kind
    elif step_type == "HttpRequest":
        method = _scalar(_field(inputs, "method")).upper()
        text = f"{method} {_scalar(_field(inputs, 'url'))}"
    elif step_type == "Wait":
        text = _scalar(_field(inputs, "duration"))
    elif step_type in ("WaitForReply", "WaitForDTMF"):
        timeout = _scalar(_field(inputs, "timeout"))
        text = f"timeout {timeout}" if timeout else ""
    elif step_type == "VoiceMessage":
        params = _field(inputs, "params")
        said = params if isinstance(params, str) else _scalar(_field(params, "text"))
        text = f"{_scalar(_field(inputs, 'action'))} {said}"
    elif step_type == UNKNOWN_TYPE:
        text = _scalar(_field(raw, "stepType"))
    return _one_line(text, NODE_LABEL_CHARS)


def _condition_label(condition: Any) -> str:
    text = _scalar(condition) if not isinstance(condition, dict | list) else str(condition)
    match = _ONE_EXPRESSION.fullmatch(text.strip())
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        text = match.group(1)
    return _one_line(text, EDGE_LABEL_CHARS)


def _branches(raw: dict[str, Any]) -> list[list[Any]]:
    do = _field(raw, "do")
    if not isinstance(do, list) or not do:
        return []
    if all(isinstance(branch, dict) for branch in do):
        return [do]  # one branch written without the outer list
    return [branch for branch in do if isinstance(branch, list)]


def _select_entries(select: Any) -> list[tuple[str, Any]]:
    """`selectNextStep` as (target, condition) pairs: a dict, or (tolerated) a list of targets
    or of `[target, condition]` pairs."""
    entries: list[tuple[str, Any]] = []
    if isinstance(select, dict):
        entries = [(key, value) for key, value in select.items() if isinstance(key, str)]
    elif isinstance(select, list):
        for item in select:
            if isinstance(item, str):
                entries.append((item, None))
            elif isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                entries.append((item[0], item[1]))
    return [(target, condition) for target, condition in entries if target]


@dataclass
class _Item:
    raw: dict[str, Any]
    parent: int | None  # index of the enclosing If
    scope: int  # index of the step list holding it
    branch_scopes: list[int]  # the `do` branches of an If, as scope indexes


def _flatten(steps: list[Any]) -> tuple[list[_Item], list[list[int]]]:
    """Every step in definition order (a step, then its `do` branches, then its siblings),
    and every step list (scope 0 is `steps`) as item indexes. Iterative: nesting is not bounded.
    """
    items: list[_Item] = []
    scopes: list[list[int]] = [[]]
    stack: list[tuple[list[Any], int, int | None, int]] = [(steps, 0, None, 0)]
    while stack:
        sequence, position, parent, scope = stack.pop()
        if position >= len(sequence):
            continue
        stack.append((sequence, position + 1, parent, scope))
        raw = sequence[position]
        if not isinstance(raw, dict):
            continue
        index = len(items)
        branches = _branches(raw) if _step_type(raw) == "If" else []
        first = len(scopes)
        scopes.extend([] for _ in branches)
        items.append(_Item(raw, parent, scope, list(range(first, first + len(branches)))))
        scopes[scope].append(index)
        for offset in range(len(branches) - 1, -1, -1):
            stack.append((branches[offset], 0, index, first + offset))
    return items, scopes


def _unique_ids(items: list[_Item]) -> tuple[list[str], list[str | None]]:
    """Node ids (a duplicate or a missing id gets a distinct one) and the ids as written."""
    written: list[str | None] = []
    for item in items:
        value = _field(item.raw, "id")
        written.append(value if isinstance(value, str) and value else None)
    real = {value for value in written if value is not None}
    used: set[str] = set()
    ids: list[str] = []
    for index, value in enumerate(written):
        base = value if value is not None else f"step-{index + 1}"
        candidate, copy = base, 1
        while candidate in used or (candidate != value and candidate in real):
            copy += 1
            candidate = f"{base}~{copy}"
        used.add(candidate)
        ids.append(candidate)
    return ids, written


# ---------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Link:
    source: int
    target: int
    kind: str
    label: str


class _Builder:
    """Vertices (steps, then ghosts of missing targets) and the edges between them."""

    def __init__(self, items: list[_Item], scopes: list[list[int]]) -> None:
        self.items = items
        self.scopes = scopes
        self.ids, written = _unique_ids(items)
        self.types = [_step_type(item.raw) for item in items]
        self.labels = [
            _step_label(kind, item.raw) for kind, item in zip(self.types, items, strict=True)
        ]
        self.parents: list[int | None] = [item.parent for item in items]
        self.links: list[_Link] = []
        self.constraints: list[tuple[int, int]] = []  # rank order only, never drawn
        self._pairs: set[tuple[int, int]] = set()
        self._ghosts: dict[str, int] = {}
        self._used = set(self.ids)
        self._global: dict[str, int] = {}
        self._scoped: list[dict[str, int]] = [{} for _ in scopes]
        for index, value in enumerate(written):
            if value is not None:
                self._global.setdefault(value, index)
                self._scoped[items[index].scope].setdefault(value, index)

    def resolve(self, target: str, referrer: int) -> int:
        """The step `target` names: in the referrer's own list first, else anywhere, else a
        ghost node (one per missing id) next to the referrer."""
        found = self._scoped[self.items[referrer].scope].get(target)
        if found is None:
            found = self._global.get(target)
        if found is not None:
            return found
        if target not in self._ghosts:
            ghost_id, copy = target, 1
            while ghost_id in self._used:
                copy += 1
                ghost_id = f"{target}~{copy}"
            self._used.add(ghost_id)
            self._ghosts[target] = len(self.ids)
            self.ids.append(ghost_id)
            self.types.append(MISSING_TYPE)
            self.labels.append("missing")
            self.parents.append(self.parents[referrer])
        return self._ghosts[target]

    def link(self, source: int, target: int, kind: str, label: str) -> None:
        if (source, target) not in self._pairs:  # one edge per pair: `taken` names pairs
            self._pairs.add((source, target))
            if self.types[target] == MISSING_TYPE:
                kind = "missing"
            self.links.append(_Link(source, target, kind, label))

    def build(self) -> None:
        items = self.items
        # In definition order the steps nested in an If follow it contiguously.
        subtree_end = list(range(len(items)))
        for index in range(len(items) - 1, -1, -1):
            parent = items[index].parent
            if parent is not None:
                subtree_end[parent] = max(subtree_end[parent], subtree_end[index])
        for index, item in enumerate(items):
            is_if = self.types[index] == "If"
            for scope in item.branch_scopes:
                members = self.scopes[scope]
                if members:
                    self.link(index, members[0], "do", "")
                    self.constraints.extend((index, member) for member in members)
            successors: list[tuple[int, str, str]] = []
            next_step = _field(item.raw, "nextStepId")
            if isinstance(next_step, str) and next_step:
                kind = "after" if is_if else "next"
                successors.append((self.resolve(next_step, index), kind, ""))
            for target, condition in _select_entries(_field(item.raw, "selectNextStep")):
                vertex = self.resolve(target, index)
                if condition is None:
                    successors.append((vertex, "default", "default"))
                else:
                    successors.append((vertex, "select", _condition_label(condition)))
            for vertex, kind, label in successors:
                self.link(index, vertex, kind, label)
                if is_if:  # what follows an If ranks below everything nested in it
                    nested = range(index + 1, subtree_end[index] + 1)
                    self.constraints.extend((inner, vertex) for inner in nested)


def layout(steps: list[dict[str, Any]]) -> Graph:
    """Lay a definition's `steps` out, top to bottom (see the module docstring)."""
    items, scopes = _flatten(steps if isinstance(steps, list) else [])
    if not items:
        return Graph((), (), 2 * MARGIN, 2 * MARGIN)
    builder = _Builder(items, scopes)
    builder.build()
    total = len(builder.ids)
    pairs = [(link.source, link.target) for link in builder.links]
    ranks, back = _rank(total, pairs, builder.constraints)
    placed = _place(ranks, pairs, back[: len(pairs)], builder.types)
    ids = builder.ids
    nodes = tuple(
        Node(
            id=ids[vertex],
            step_type=builder.types[vertex],
            label=builder.labels[vertex],
            x=placed.left[vertex],
            y=placed.top[vertex],
            width=placed.width[vertex],
            height=placed.height[vertex],
            parent=None if (parent := builder.parents[vertex]) is None else ids[parent],
            entry=vertex == 0,
        )
        for vertex in range(total)
    )
    edges = tuple(
        Edge(ids[link.source], ids[link.target], link.kind, link.label, placed.routes[number])
        for number, link in enumerate(builder.links)
    )
    return Graph(nodes, edges, placed.graph_width, placed.graph_height)


def _rank(
    total: int, links: list[tuple[int, int]], constraints: list[tuple[int, int]]
) -> tuple[list[int], list[bool]]:
    """Ranks, and which edges (links, then constraints) are drawn against the flow.

    Back edges: inside a cycle (a strongly connected component), the edges to a step that
    does not come later in the definition; removing them leaves no cycle, and a loop written
    the usual way (back to an earlier step) is the edge set aside. The steps reached from the
    entry are ranked by their longest path from it, so the entry is on top; the steps it does
    not reach (orphans) are ranked among themselves, then moved down next to where they lead;
    an edge from an orphan into the reached part is a back edge only if it points upwards."""
    pairs = links + constraints
    adjacency: list[list[int]] = [[] for _ in range(total)]
    for source, target in pairs:
        adjacency[source].append(target)
    component = _components(adjacency)
    reached = [False] * total
    reached[0] = True
    pending = [0]
    while pending:
        for target in adjacency[pending.pop()]:
            if not reached[target]:
                reached[target] = True
                pending.append(target)
    back = [component[source] == component[target] and target <= source for source, target in pairs]
    jumps = [not reached[source] and reached[target] for source, target in pairs]

    successors: list[list[int]] = [[] for _ in range(total)]
    below: list[list[int]] = [[] for _ in range(total)]  # jump targets
    indegree = [0] * total
    for number, (source, target) in enumerate(pairs):
        if jumps[number]:
            below[source].append(target)
        elif not back[number]:
            successors[source].append(target)
            indegree[target] += 1
    sources = [degree == 0 for degree in indegree]
    ranks = [0] * total
    ready = [vertex for vertex in range(total) if indegree[vertex] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        vertex = heapq.heappop(ready)
        order.append(vertex)
        for target in successors[vertex]:
            ranks[target] = max(ranks[target], ranks[vertex] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, target)
    # Orphans, and steps only a back edge leads to, sit just above their nearest successor.
    for vertex in reversed(order):
        if vertex and (sources[vertex] or not reached[vertex]):
            nearest = [ranks[target] for target in successors[vertex] + below[vertex]]
            if nearest:
                ranks[vertex] = max(ranks[vertex], min(nearest) - 1)
    for number, (source, target) in enumerate(pairs):
        if jumps[number]:
            back[number] = ranks[source] >= ranks[target]
    return ranks, back


def _components(adjacency: list[list[int]]) -> list[int]:
    """Strongly connected component of every vertex (Tarjan, without recursion)."""
    size = len(adjacency)
    index = [-1] * size
    low = [0] * size
    on_stack = [False] * size
    component = [-1] * size
    stack: list[int] = []
    counter = components = 0
    for root in range(size):
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            vertex, position = work[-1]
            if position < len(adjacency[vertex]):
                work[-1] = (vertex, position + 1)
                target = adjacency[vertex][position]
                if index[target] < 0:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack[target] = True
                    work.append((target, 0))
                elif on_stack[target]:
                    low[vertex] = min(low[vertex], index[target])
                continue
            work.pop()
            if work:
                caller = work[-1][0]
                low[caller] = min(low[caller], low[vertex])
            if low[vertex] == index[vertex]:
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component[member] = components
                    if member == vertex:
                        break
                components += 1
    return component


@dataclass(frozen=True)
class _Placement:
    left: list[float]
    top: list[float]
    width: list[float]
    height: list[float]
    routes: list[tuple[tuple[float, float], ...]]
    graph_width: float
    graph_height: float


def _place(
    ranks: list[int], links: list[tuple[int, int]], back: list[bool], types: list[str]
) -> _Placement:
    total = len(ranks)
    width = [GHOST_WIDTH if kind == MISSING_TYPE else NODE_WIDTH for kind in types]
    height = [GHOST_HEIGHT if kind == MISSING_TYPE else NODE_HEIGHT for kind in types]

    # The layered graph: a forward edge spanning several ranks passes through virtual vertices.
    vrank = list(ranks)
    vwidth = list(width)
    up: list[list[int]] = [[] for _ in range(total)]
    down: list[list[int]] = [[] for _ in range(total)]
    chains: list[list[int]] = []
    for number, (source, target) in enumerate(links):
        if back[number]:
            chains.append([])
            continue
        chain = [source]
        for rank in range(ranks[source] + 1, ranks[target]):
            chain.append(len(vrank))
            vrank.append(rank)
            vwidth.append(0.0)
            up.append([])
            down.append([])
        chain.append(target)
        for upper, lower in itertools.pairwise(chain):
            down[upper].append(lower)
            up[lower].append(upper)
        chains.append(chain)

    layers = _order(vrank, up, down)
    x = _coordinates(layers, up, down, vwidth, total)
    shift = MARGIN - min(x[vertex] - vwidth[vertex] / 2 for vertex in range(len(x)))
    x = [value + shift for value in x]
    pitch = NODE_HEIGHT + RANK_GAP

    def band(rank: int) -> float:
        return MARGIN + rank * pitch

    left = [_round(x[vertex] - width[vertex] / 2) for vertex in range(total)]
    top = [
        _round(band(ranks[vertex]) + (NODE_HEIGHT - height[vertex]) / 2) for vertex in range(total)
    ]

    # Ports: edges leave a box's bottom and enter a box's top spread out, in the order of
    # where they come from / go to; back edges use a port of their own at the right.
    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    outgoing: list[list[int]] = [[] for _ in range(total)]
    incoming: list[list[int]] = [[] for _ in range(total)]
    for number, chain in enumerate(chains):
        if chain:
            outgoing[chain[0]].append(number)
            incoming[chain[-1]].append(number)
    for vertex in range(total):
        leaving = sorted(outgoing[vertex], key=lambda n: (x[chains[n][1]], chains[n][-1], n))
        for position, number in enumerate(leaving):
            out_port[number] = _port(left[vertex], width[vertex], position, len(leaving))
        entering = sorted(incoming[vertex], key=lambda n: (x[chains[n][-2]], chains[n][0], n))
        for position, number in enumerate(entering):
            in_port[number] = _port(left[vertex], width[vertex], position, len(entering))

    routes: list[tuple[tuple[float, float], ...]] = [() for _ in links]
    for number, chain in enumerate(chains):
        if not chain:
            continue
        source, target = chain[0], chain[-1]
        points = [(out_port[number], top[source] + height[source])]
        for virtual in chain[1:-1]:
            points.append((x[virtual], band(vrank[virtual])))
            points.append((x[virtual], band(vrank[virtual]) + NODE_HEIGHT))
        points.append((in_port[number], top[target]))
        routes[number] = tuple((_round(px), _round(py)) for px, py in points)

    right = max(x[vertex] + vwidth[vertex] / 2 for vertex in range(len(x)))
    loops = sorted(
        (ranks[source] - ranks[target], source, target, number)
        for number, (source, target) in enumerate(links)
        if back[number]
    )
    lane_x = right
    for lane, (_, source, target, number) in enumerate(loops):
        lane_x = right + LANE_OFFSET + lane * LANE_GAP
        step = 8 + (lane % 3) * 5
        out_x = left[source] + width[source] * 0.9
        out_y = top[source] + height[source]
        in_x = left[target] + width[target] * 0.9
        in_y = top[target]
        points = [
            (out_x, out_y),
            (out_x, out_y + step),
            (lane_x, out_y + step),
            (lane_x, in_y - step),
            (in_x, in_y - step),
            (in_x, in_y),
        ]
        routes[number] = tuple((_round(px), _round(py)) for px, py in points)

    rank_count = max(ranks) + 1
    return _Placement(
        left=left,
        top=top,
        width=width,
        height=height,
        routes=routes,
        graph_width=_round(max(right, lane_x) + MARGIN),
        graph_height=_round(2 * MARGIN + rank_count * NODE_HEIGHT + (rank_count - 1) * RANK_GAP),
    )


def _round(value: float) -> float:
    return round(value, 1) + 0.0  # + 0.0 turns -0.0 into 0.0


def _port(left: float, width: float, position: int, count: int) -> float:
    if count == 1:
        return left + width / 2
    return left + width * (0.2 + 0.6 * position / (count - 1))


def _order(vrank: list[int], up: list[list[int]], down: list[list[int]]) -> list[list[int]]:
    """Order every rank: depth-first discovery order, then barycenter sweeps (best kept)."""
    size = len(vrank)
    discovered = [-1] * size
    counter = 0
    for root in range(size):  # steps in definition order; virtual vertices always have an `up`
        if up[root] or discovered[root] >= 0:
            continue
        stack = [root]
        while stack:
            vertex = stack.pop()
            if discovered[vertex] >= 0:
                continue
            discovered[vertex] = counter
            counter += 1
            stack.extend(reversed(down[vertex]))
    layers: list[list[int]] = [[] for _ in range(max(vrank) + 1)]
    for vertex in sorted(range(size), key=lambda v: discovered[v]):
        layers[vrank[vertex]].append(vertex)
    position = [0] * size
    for layer in layers:
        for index, vertex in enumerate(layer):
            position[vertex] = index

    best = [list(layer) for layer in layers]
    fewest = _crossings(layers, down, position)
    for sweep in range(SWEEPS):
        if fewest == 0:
            break
        if sweep % 2 == 0:
            for rank in range(1, len(layers)):
                _reorder(layers[rank], up, position)
        else:
            for rank in range(len(layers) - 2, -1, -1):
                _reorder(layers[rank], down, position)
        crossings = _crossings(layers, down, position)
        if crossings < fewest:
            fewest = crossings
            best = [list(layer) for layer in layers]
    return best


def _reorder(layer: list[int], neighbours: list[list[int]], position: list[int]) -> None:
    """Sort by the mean position of the neighbours in the adjacent rank; a vertex without
    neighbours there keeps its place; ties keep the current order."""
    movable: list[tuple[float, int, int]] = []
    slots: list[int] = []
    for index, vertex in enumerate(layer):
        around = neighbours[vertex]
        if around:
            mean = sum(position[other] for other in around) / len(around)
            movable.append((mean, index, vertex))
            slots.append(index)
    movable.sort()
    for slot, (_, _, vertex) in zip(slots, movable, strict=True):
        layer[slot] = vertex
    for index, vertex in enumerate(layer):
        position[vertex] = index


def _crossings(layers: list[list[int]], down: list[list[int]], position: list[int]) -> int:
    """Edge crossings between consecutive ranks (inversions, counted with a Fenwick tree)."""
    total = 0
    for rank in range(len(layers) - 1):
        ends = sorted(
            (position[upper], position[lower]) for upper in layers[rank] for lower in down[upper]
        )
        size = len(layers[rank + 1])
        tree = [0] * (size + 1)
        for seen, (_, lower) in enumerate(ends):
            below = 0  # earlier edges ending at or left of `lower`
            index = lower + 1
            while index > 0:
                below += tree[index]
                index -= index & -index
            total += seen - below
            index = lower + 1
            while index <= size:
                tree[index] += 1
                index += index & -index
    return total


def _coordinates(
    layers: list[list[int]],
    up: list[list[int]],
    down: list[list[int]],
    vwidth: list[float],
    total: int,
) -> list[float]:
    """Centre x of every vertex: each rank in turn is moved as close as the minimum gaps allow
    to the mean x of its neighbours (least squares under order constraints)."""
    x = [0.0] * len(vwidth)
    offsets: list[list[float]] = []
    for layer in layers:
        layer_offsets = [0.0]
        for left, right in itertools.pairwise(layer):
            real = (left < total) + (right < total)
            gap = (_GAP_VIRTUAL, _GAP_MIXED, _GAP_NODES)[real]
            layer_offsets.append(layer_offsets[-1] + (vwidth[left] + vwidth[right]) / 2 + gap)
        offsets.append(layer_offsets)
        for vertex, offset in zip(layer, layer_offsets, strict=True):
            x[vertex] = offset - layer_offsets[-1] / 2
    # Downward passes align a step under its predecessors (and long edges straight), upward
    # passes centre it over its successors.
    ranks = range(len(layers))
    passes = [(ranks[1:], up), (ranks[-2::-1], down)] * _ROUNDS
    for order, neighbours in passes:
        for rank in order:
            layer = layers[rank]
            desired = []
            for vertex in layer:
                around = neighbours[vertex]
                desired.append(sum(x[o] for o in around) / len(around) if around else x[vertex])
            for vertex, value in zip(layer, _fit(desired, offsets[rank]), strict=True):
                x[vertex] = value
    return x


def _fit(desired: list[float], offsets: list[float]) -> list[float]:
    """Positions closest (least squares) to `desired` with position[i] - position[0] >=
    offsets[i] between neighbours: isotonic regression by pool-adjacent-violators."""
    blocks: list[tuple[float, int]] = []
    for wanted, offset in zip(desired, offsets, strict=True):
        block = (wanted - offset, 1)
        while blocks and blocks[-1][0] / blocks[-1][1] > block[0] / block[1]:
            previous = blocks.pop()
            block = (previous[0] + block[0], previous[1] + block[1])
        blocks.append(block)
    result: list[float] = []
    for block_sum, size in blocks:
        mean, start = block_sum / size, len(result)
        result.extend([mean + offsets[start + k] for k in range(size)])
    return result


# ----------------------------------------------------------------------------------- SVG


def _esc(text: str) -> str:
    """Untrusted text, safe in XML/HTML content and in double-quoted attribute values."""
    return html.escape(_clean(text), quote=True)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _class_token(text: str) -> str:
    return _CLASS_UNSAFE.sub("", text.lower()) or "unknown"


def _path(points: tuple[tuple[float, float], ...]) -> str:
    return " ".join(
        f"{'M' if index == 0 else 'L'}{_num(px)},{_num(py)}"
        for index, (px, py) in enumerate(points)
    )


def render_svg(
    graph: Graph,
    *,
    counts: Mapping[str, int] | None = None,
    taken: Collection[tuple[str, str]] = (),
    selected: str | None = None,
) -> str:
    """The graph as one `<svg>` element: classes only (no `style`, no script), every text
    escaped. `counts` adds a badge to executed steps, `taken` marks the (source, target) edges
    an instance followed, `selected` marks one node."""
    counts = counts or {}
    followed = {(source, target) for source, target in taken}
    by_id = {node.id: node for node in graph.nodes}
    steps = sum(1 for node in graph.nodes if node.step_type != MISSING_TYPE)
    title = f"Workflow graph: {steps} step{'' if steps == 1 else 's'}"
    out = [
        f'<svg xmlns="{_SVG_NS}" viewBox="0 0 {_num(graph.width)} {_num(graph.height)}"'
        f' width="{_num(graph.width)}" height="{_num(graph.height)}" class="flow-graph"'
        f' role="group" aria-label="{_esc(title)}" font-family="sans-serif"'
        f' font-size="{_FONT_SIZE}">',
        "<defs>",
        *(
            f'<marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9"'
            f' markerHeight="9" orient="auto-start-reverse" markerUnits="userSpaceOnUse">'
            f'<path class="{css}" d="M0,0 L10,5 L0,10 Z" fill="{_INK}"/></marker>'
            for marker, css in (("flow-arrow", "arrow"), ("flow-arrow-taken", "arrow arrow-taken"))
        ),
        "</defs>",
        '<g class="edges">',
    ]
    for edge in graph.edges:
        out.append(_edge_svg(edge, by_id, (edge.source, edge.target) in followed, graph.width))
    out.append('</g><g class="nodes">')
    for node in graph.nodes:
        count = counts.get(node.id, 0)
        out.append(_node_svg(node, count if isinstance(count, int) else 0, node.id == selected))
    out.append("</g></svg>")
    return "".join(out)


def _edge_svg(edge: Edge, by_id: Mapping[str, Node], taken: bool, graph_width: float) -> str:
    classes = ["edge", f"edge-{_class_token(edge.kind)}"]
    source, target = by_id.get(edge.source), by_id.get(edge.target)
    if source is not None and target is not None and target.y <= source.y:
        classes.append("back")
    if taken:
        classes.append("taken")
    marker = "flow-arrow-taken" if taken else "flow-arrow"
    described = f"{edge.source} → {edge.target}" + (f": {edge.label}" if edge.label else "")
    parts = [
        f'<g class="{" ".join(classes)}" data-source="{_esc(edge.source)}"'
        f' data-target="{_esc(edge.target)}">',
        f"<title>{_esc(described)}</title>",
    ]
    if edge.points:
        parts.append(
            f'<path class="edge-line" d="{_path(edge.points)}" fill="none" stroke="{_INK}"'
            f' marker-end="url(#{marker})"/>'
        )
        if edge.label:
            parts.append(_edge_label(edge, "back" in classes, graph_width))
    parts.append("</g>")
    return "".join(parts)


def _edge_label(edge: Edge, back: bool, graph_width: float) -> str:
    text = _shorten(edge.label, _EDGE_TEXT_CHARS)
    wide = len(text) * _EDGE_CHAR_WIDTH
    points = edge.points
    if back and len(points) > 2:
        # Under the first turn, below the source, where the edge heads for its lane.
        x, y, anchor = min(points[1][0] + 6, graph_width - wide - 2), points[1][1] + 11, "start"
    else:
        # On the last segment, close to the target: fanned-out edges are farthest apart there.
        (x0, y0), (x1, y1) = points[-2] if len(points) > 1 else points[0], points[-1]
        x, y, anchor = x0 + (x1 - x0) * 0.8, y0 + (y1 - y0) * 0.8 - 3, "middle"
        x = max(wide / 2 + 2, min(x, graph_width - wide / 2 - 2))
    return (
        f'<text class="edge-label" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"'
        f' font-size="10">{_esc(text)}</text>'
    )


def _node_svg(node: Node, count: int, selected: bool) -> str:
    classes = ["node", f"node-{_class_token(node.step_type)}"]
    if node.entry:
        classes.append("entry")
    if count > 0:
        classes.append("executed")
    if selected:
        classes.append("selected")
    ghost = node.step_type == MISSING_TYPE
    type_line = "missing step" if ghost else node.step_type
    spoken = f"{type_line} {node.id}" + (f": {node.label}" if node.label and not ghost else "")
    if count > 0:
        spoken += f", ran {count} time{'' if count == 1 else 's'}"
    tooltip = f"{type_line} {node.id}" + (f"\n{node.label}" if node.label and not ghost else "")
    parts = [
        f'<g class="{" ".join(classes)}" data-step="{_esc(node.id)}" tabindex="0" role="button"'
        f' aria-label="{_esc(spoken)}"' + (' aria-current="true"' if selected else "") + ">",
        f"<title>{_esc(tooltip)}</title>",
        f'<rect class="node-box" x="{_num(node.x)}" y="{_num(node.y)}"'
        f' width="{_num(node.width)}" height="{_num(node.height)}" rx="6" ry="6"'
        f" {_GHOST_BOX if ghost else _BOX}/>",
    ]
    left = node.x + 10
    if ghost:
        lines = [("node-type", type_line), ("node-id", node.id)]
    else:
        lines = [("node-type", type_line), ("node-id", node.id), ("node-label", node.label)]
    limits = {"node-type": _TYPE_CHARS, "node-id": _ID_CHARS, "node-label": _TEXT_CHARS}
    for line, (css, text) in enumerate(lines):
        if text:
            baseline = node.y + 18 + 18 * line
            parts.append(
                f'<text class="{css}" x="{_num(left)}" y="{_num(baseline)}">'
                f"{_esc(_shorten(text, limits[css]))}</text>"
            )
    if count > 0:
        # A circle on the top-right corner (wider numbers make it grow).
        shown = str(count) if count < 100_000 else "99999+"
        radius = max(9.0, 3.0 + 3.2 * len(shown))
        cx, cy = node.x + node.width - 4, node.y
        parts.append(
            f'<g class="count" aria-hidden="true"><circle cx="{_num(cx)}" cy="{_num(cy)}"'
            f' r="{_num(radius)}" fill="{_INK}"/><text x="{_num(cx)}" y="{_num(cy + 3.5)}"'
            f' text-anchor="middle" font-size="10" fill="#ffffff">{shown}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)
