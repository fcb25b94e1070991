"""The console's definition graph: layered layout (ranks, branches, If, loops, scale, tolerant
input) and its SVG rendering (structure, classes for the stylesheet, escaping of hostile text)."""

from __future__ import annotations

import copy
import itertools
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from relayflow.console.graph import Edge, Graph, Node, layout, render_svg

DATA = Path(__file__).parent / "data"
FLOW_FILES = sorted((DATA / "flows").glob("*.json"))
EXAMPLE_FILES = sorted((DATA / "spec_examples").glob("*.json"))
SVG_NS = "{http://www.w3.org/2000/svg}"


def sms(step_id: str, next_step: str | None = None, text: str = "Hello") -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": step_id,
        "stepType": "SMS",
        "inputs": {"subAccountId": "acme", "destination": "+6500000000", "text": text},
    }
    if next_step is not None:
        step["nextStepId"] = next_step
    return step


def wait(step_id: str, next_step: str | None = None, duration: str = "00:00:01") -> dict[str, Any]:
    step: dict[str, Any] = {"id": step_id, "stepType": "Wait", "inputs": {"duration": duration}}
    if next_step is not None:
        step["nextStepId"] = next_step
    return step


def branch(step_id: str, select: dict[str, Any]) -> dict[str, Any]:
    return {"id": step_id, "stepType": "Branch", "selectNextStep": select}


def by_id(graph: Graph) -> dict[str, Node]:
    return {node.id: node for node in graph.nodes}


def edges_of(graph: Graph) -> dict[tuple[str, str], Edge]:
    return {(edge.source, edge.target): edge for edge in graph.edges}


def overlap(first: Node, second: Node) -> bool:
    return (
        first.x < second.x + second.width
        and second.x < first.x + first.width
        and first.y < second.y + second.height
        and second.y < first.y + first.height
    )


def assert_sound(graph: Graph) -> None:
    """No two boxes overlap; everything lies inside the graph; every edge has a route."""
    for first, second in itertools.combinations(graph.nodes, 2):
        assert not overlap(first, second), (first, second)
    assert len({node.id for node in graph.nodes}) == len(graph.nodes)
    for node in graph.nodes:
        assert node.x >= 0, node
        assert node.y >= 0, node
        assert node.x + node.width <= graph.width, node
        assert node.y + node.height <= graph.height, node
    nodes = by_id(graph)
    for edge in graph.edges:
        assert edge.source in nodes, edge
        assert edge.target in nodes, edge
        assert len(edge.points) >= 2, edge
        for px, py in edge.points:
            assert 0 <= px <= graph.width, edge
            assert 0 <= py <= graph.height, edge


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG_NS}svg"
    return root


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def node_groups(root: ET.Element) -> dict[str, ET.Element]:
    return {
        group.attrib["data-step"]: group
        for group in root.iter(f"{SVG_NS}g")
        if "data-step" in group.attrib
    }


def edge_groups(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {
        (group.attrib["data-source"], group.attrib["data-target"]): group
        for group in root.iter(f"{SVG_NS}g")
        if "data-source" in group.attrib
    }


def classes(element: ET.Element) -> set[str]:
    return set(element.attrib.get("class", "").split())


def count_steps(steps: list[Any]) -> int:
    total = 0
    for step in steps:
        if isinstance(step, dict):
            total += 1
            for nested in step.get("do") or []:
                if isinstance(nested, list):
                    total += count_steps(nested)
    return total


def generated_flow(count: int = 100, seed: int = 7) -> list[dict[str, Any]]:
    """A flow of `count` steps: chains, Branches (some loop back), Ifs with two branches."""
    rng = random.Random(seed)
    ids = [f"s{number}" for number in range(count)]
    steps: list[dict[str, Any]] = []
    index = 0
    while index < count:
        roll = rng.random()
        if roll < 0.15 and index + 5 < count:
            targets = rng.sample(ids[index + 1 : index + 6], 2)
            select: dict[str, Any] = {targets[0]: f"{{{{data.x == {index}}}}}", targets[1]: None}
            if index > 3 and rng.random() < 0.5:
                select[ids[rng.randrange(index)]] = "{{data.again}}"  # a loop
            steps.append(branch(ids[index], select))
            index += 1
        elif roll < 0.25 and index + 4 < count:
            first, second, third = ids[index + 1 : index + 4]
            steps.append(
                {
                    "id": ids[index],
                    "stepType": "If",
                    "inputs": {"condition": "{{data.ok}}"},
                    "do": [[wait(first, second), sms(second)], [wait(third)]],
                    "nextStepId": ids[index + 4],
                }
            )
            index += 4
        else:
            steps.append(sms(ids[index], ids[index + 1] if index + 1 < count else None))
            index += 1
    return steps


# ------------------------------------------------------------------------------------ layout


def test_a_linear_flow_is_a_vertical_chain() -> None:
    graph = layout([sms("a", "b", text="Hi there"), wait("b", "c", "00:05:00"), sms("c")])
    nodes = by_id(graph)
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    assert [node.id for node in graph.nodes] == ["a", "b", "c"]
    assert a.y < b.y < c.y
    assert b.y - a.y == c.y - b.y
    assert a.x == b.x == c.x
    assert [node.entry for node in graph.nodes] == [True, False, False]
    assert all(node.parent is None for node in graph.nodes)
    assert (a.step_type, a.label) == ("SMS", "Hi there")
    assert (b.step_type, b.label) == ("Wait", "00:05:00")
    edges = edges_of(graph)
    assert set(edges) == {("a", "b"), ("b", "c")}
    first = edges["a", "b"]
    assert (first.kind, first.label) == ("next", "")
    assert first.points[0] == (a.x + a.width / 2, a.y + a.height)
    assert first.points[-1] == (b.x + b.width / 2, b.y)
    assert_sound(graph)


@pytest.mark.parametrize(
    ("step", "label"),
    [
        (sms("x", text="  Your   code\nis 1234 "), "Your code is 1234"),
        (sms("x", text="x" * 500), "x" * 119 + "…"),
        (
            {
                "id": "x",
                "stepType": "ChatAppsMessage",
                "inputs": {"type": "text", "content": {"text": "Hi on WhatsApp"}},
            },
            "Hi on WhatsApp",
        ),
        (
            {
                "id": "x",
                "stepType": "ChatAppsMessage",
                "inputs": {"type": "template", "content": {"template": {"name": "confirm"}}},
            },
            "template confirm",
        ),
        (
            {
                "id": "x",
                "stepType": "HttpRequest",
                "inputs": {"url": "https://crm/x", "method": "post"},
            },
            "POST https://crm/x",
        ),
        (wait("x", duration="1.6:30:15"), "1.6:30:15"),
        (
            {
                "id": "x",
                "stepType": "WaitForReply",
                "inputs": {"from": "+65", "timeout": "00:10:00"},
            },
            "timeout 00:10:00",
        ),
        ({"id": "x", "stepType": "WaitForDTMF", "inputs": {"dtmfRequestId": "r"}}, ""),
        (
            {
                "id": "x",
                "stepType": "VoiceMessage",
                "inputs": {"action": "say&capture", "params": {"text": "Press 1"}},
            },
            "say&capture Press 1",
        ),
        (branch("x", {"y": None}), ""),
        ({"id": "x", "stepType": "If", "inputs": {"condition": "{{true}}"}, "do": []}, ""),
        ({"id": "x", "stepType": "SMS", "inputs": {"Text": "any letter case"}}, "any letter case"),
        ({"id": "x", "stepType": "SMS", "inputs": "{{data.inputs}}"}, ""),
    ],
)
def test_node_labels_show_the_key_input(step: dict[str, Any], label: str) -> None:
    (node,) = (node for node in layout([step]).nodes if node.id == "x")
    assert node.label == label


def test_branch_conditions_and_the_null_default() -> None:
    steps = [
        branch(
            "route",
            {
                "big": "{{data.amount > 100}}",
                "tiny": "{{ data.amount < 1 }}",
                "vip": True,
                "normal": None,
            },
        ),
        wait("big"),
        wait("tiny"),
        wait("vip"),
        wait("normal"),
    ]
    graph = layout(steps)
    edges = edges_of(graph)
    assert [(edge.target, edge.kind, edge.label) for edge in graph.edges] == [
        ("big", "select", "data.amount > 100"),
        ("tiny", "select", "data.amount < 1"),
        ("vip", "select", "true"),
        ("normal", "default", "default"),
    ]
    nodes = by_id(graph)
    targets = [nodes[name] for name in ("big", "tiny", "vip", "normal")]
    assert len({node.y for node in targets}) == 1
    assert targets[0].y > nodes["route"].y
    assert [node.x for node in targets] == sorted(node.x for node in targets)  # written order
    left, right = targets[0].x, targets[-1].x + targets[-1].width
    assert left < nodes["route"].x + nodes["route"].width / 2 < right  # centred above
    assert edges["route", "normal"].points[-1][1] == nodes["normal"].y
    assert_sound(graph)


def test_condition_labels_are_shortened() -> None:
    condition = "{{data.payload.user.msisdn == '+6512345678' && data.tier == 'gold'}}"
    graph = layout([branch("b", {"t": condition}), wait("t")])
    (edge,) = graph.edges
    assert len(edge.label) == 40
    assert edge.label.endswith("…")
    assert edge.label.startswith("data.payload.user.msisdn == ")


def test_if_branches_rank_below_the_if_and_the_flow_continues_after_them() -> None:
    steps = json.loads((DATA / "flows" / "If.json").read_text(encoding="utf-8"))["steps"]
    graph = layout(steps)
    nodes = by_id(graph)
    assert [node.id for node in graph.nodes] == ["vip", "perk", "thanks", "log", "done", "end"]
    assert {name: nodes[name].parent for name in nodes} == {
        "vip": None,
        "perk": "vip",
        "thanks": "vip",
        "log": "vip",
        "done": None,
        "end": None,
    }
    assert [(edge.source, edge.target, edge.kind) for edge in graph.edges] == [
        ("vip", "perk", "do"),
        ("vip", "log", "do"),
        ("vip", "done", "after"),
        ("perk", "thanks", "next"),
        ("done", "end", "default"),
    ]
    assert nodes["perk"].y == nodes["log"].y > nodes["vip"].y
    assert nodes["thanks"].y > nodes["perk"].y
    inside = [nodes[name] for name in ("perk", "thanks", "log")]
    assert all(nodes["done"].y > node.y for node in inside)
    assert nodes["end"].y > nodes["done"].y
    after = edges_of(graph)["vip", "done"]
    assert len(after.points) > 2  # passes the branches through their ranks
    assert_sound(graph)


def test_nested_ifs_keep_their_parents_and_order() -> None:
    inner = {
        "id": "inner",
        "stepType": "If",
        "inputs": {"condition": "{{true}}"},
        "do": [[sms("deep")]],
        "nextStepId": "tail",
    }
    outer = {
        "id": "outer",
        "stepType": "If",
        "inputs": {"condition": "{{true}}"},
        "do": [[inner, wait("tail")], [sms("side")]],
        "nextStepId": "end",
    }
    graph = layout([outer, sms("end")])
    nodes = by_id(graph)
    assert [node.id for node in graph.nodes] == ["outer", "inner", "deep", "tail", "side", "end"]
    assert nodes["deep"].parent == "inner"
    assert nodes["inner"].parent == nodes["tail"].parent == nodes["side"].parent == "outer"
    assert nodes["outer"].y < nodes["inner"].y < nodes["deep"].y < nodes["tail"].y
    assert nodes["end"].y > nodes["tail"].y
    kinds = {(edge.source, edge.target): edge.kind for edge in graph.edges}
    assert kinds == {
        ("outer", "inner"): "do",
        ("outer", "side"): "do",
        ("outer", "end"): "after",
        ("inner", "deep"): "do",
        ("inner", "tail"): "after",
    }
    assert_sound(graph)


def test_loops_do_not_break_the_ranks() -> None:
    steps = [
        sms("ask", "reply"),
        {
            "id": "reply",
            "stepType": "WaitForReply",
            "inputs": {"from": "+65", "channel": "sms", "timeout": "00:10:00"},
            "selectNextStep": {"ask": "{{step.reply == null}}", "thanks": None},
        },
        sms("thanks", "poll"),
        wait("poll", "poll"),  # a step that loops on itself
    ]
    graph = layout(steps)
    nodes = by_id(graph)
    assert nodes["ask"].y < nodes["reply"].y < nodes["thanks"].y < nodes["poll"].y
    assert len({(node.x, node.y) for node in graph.nodes}) == len(graph.nodes)
    right = max(node.x + node.width for node in graph.nodes)
    edges = edges_of(graph)
    loop = edges["reply", "ask"]
    assert (loop.kind, loop.label) == ("select", "step.reply == null")
    assert max(px for px, _ in loop.points) > right  # routed around the side
    assert loop.points[0][1] == nodes["reply"].y + nodes["reply"].height
    assert loop.points[-1][1] == nodes["ask"].y
    itself = edges["poll", "poll"]
    assert max(px for px, _ in itself.points) > right
    assert itself.points[0] != loop.points[0]
    assert_sound(graph)
    root = parse(render_svg(graph))
    assert "back" in classes(edge_groups(root)["reply", "ask"])
    assert "back" not in classes(edge_groups(root)["ask", "reply"])


def test_steps_written_out_of_order_are_not_loops() -> None:
    graph = layout([sms("a", "c"), sms("b"), sms("c", "b")])
    nodes = by_id(graph)
    assert nodes["a"].y < nodes["c"].y < nodes["b"].y
    edge = edges_of(graph)["c", "b"]
    assert edge.points[-1][1] > edge.points[0][1]
    assert "back" not in classes(edge_groups(parse(render_svg(graph)))["c", "b"])


def test_the_entry_stays_on_top_when_unreached_steps_lead_into_it() -> None:
    # The 8x8 OAS example has such steps: written, but reached from nowhere.
    steps = [sms("start", "end"), sms("orphan", "later"), sms("later", "start"), sms("end")]
    graph = layout(steps)
    nodes = by_id(graph)
    assert nodes["start"].y == min(node.y for node in graph.nodes)
    assert nodes["start"].entry
    assert nodes["end"].y > nodes["start"].y
    assert nodes["later"].y > nodes["orphan"].y
    assert ("later", "start") in edges_of(graph)
    assert_sound(graph)


def test_a_hundred_steps_are_legible_and_deterministic() -> None:
    steps = generated_flow()
    assert count_steps(steps) == 100
    graph = layout(steps)
    assert len(graph.nodes) == 100
    assert any(edge.kind == "do" for edge in graph.edges)
    assert any(edge.kind == "after" for edge in graph.edges)
    assert any(edge.points[-1][1] < edge.points[0][1] for edge in graph.edges)  # loops
    assert_sound(graph)
    assert graph.width < 4000  # grows with the flow's breadth, not with its length
    again = layout(copy.deepcopy(steps))
    assert again == graph
    counts = {node.id: index for index, node in enumerate(graph.nodes)}
    taken = [(edge.source, edge.target) for edge in graph.edges[::3]]
    svg = render_svg(graph, counts=counts, taken=taken, selected="s50")
    assert render_svg(again, counts=dict(counts), taken=set(taken), selected="s50") == svg
    root = parse(svg)
    assert len(node_groups(root)) == 100
    assert len(edge_groups(root)) == len(graph.edges)


@pytest.mark.parametrize("seed", range(6))
def test_generated_flows_never_overlap(seed: int) -> None:
    graph = layout(generated_flow(count=60, seed=seed))
    assert_sound(graph)


def test_a_wide_branch_does_not_overlap() -> None:
    targets = [f"t{number}" for number in range(40)]
    steps = [branch("fan", {target: "{{true}}" for target in targets})]
    steps += [sms(target, "join") for target in targets] + [sms("join")]
    graph = layout(steps)
    assert len({by_id(graph)[target].y for target in targets}) == 1
    assert_sound(graph)


def test_unknown_step_types_and_missing_targets_are_drawn() -> None:
    steps = [
        {"id": "warp", "stepType": "Teleport", "nextStepId": "nowhere"},
        branch("pick", {"gone": "{{data.x}}", "warp": None}),
    ]
    graph = layout([sms("start", "warp"), *steps])
    nodes = by_id(graph)
    assert (nodes["warp"].step_type, nodes["warp"].label) == ("Unknown", "Teleport")
    assert nodes["nowhere"].step_type == nodes["gone"].step_type == "Missing"
    assert nodes["gone"].parent is None
    edges = edges_of(graph)
    assert (edges["warp", "nowhere"].kind, edges["warp", "nowhere"].label) == ("missing", "")
    assert (edges["pick", "gone"].kind, edges["pick", "gone"].label) == ("missing", "data.x")
    assert edges["pick", "warp"].kind == "default"
    assert_sound(graph)
    groups = node_groups(parse(render_svg(graph)))
    assert "node-unknown" in classes(groups["warp"])
    assert "node-missing" in classes(groups["nowhere"])


def test_a_missing_target_inside_a_branch_belongs_to_that_branch() -> None:
    step = {
        "id": "check",
        "stepType": "If",
        "inputs": {"condition": "{{true}}"},
        "do": [[sms("inside", "lost")]],
    }
    nodes = by_id(layout([step]))
    assert nodes["lost"].parent == "check"
    assert nodes["lost"].y > nodes["inside"].y


def test_tolerant_input() -> None:
    steps: list[Any] = [
        {"ID": "first", "StepType": "branch", "SelectNextStep": {"second": None}},
        None,
        "not a step",
        {  # a UI export: empty do, null next step, empty select
            "id": "second",
            "stepType": "sms",
            "do": [],
            "nextStepId": None,
            "selectNextStep": {},
            "inputs": None,
            "outputs": {},
        },
        {"stepType": "Wait", "inputs": {"duration": "1"}},  # no id
        {"id": "second", "stepType": "Wait"},  # a duplicate id
        {"id": 7, "stepType": "Wait"},  # an id of the wrong type
        {"id": "list", "stepType": "Branch", "selectNextStep": ["first", ["second", "{{x}}"]]},
        {"id": "one", "stepType": "If", "do": [wait("flat")]},  # one branch, no outer list
        {"id": "odd", "stepType": "If", "do": [None, [], "x", {}]},
    ]
    graph = layout(steps)
    ids = [node.id for node in graph.nodes]
    assert len(set(ids)) == len(ids) == 9
    assert ids[:3] == ["first", "second", "step-3"]
    assert "second~2" in ids
    nodes = by_id(graph)
    assert nodes["first"].step_type == "Branch"
    assert nodes["second"].step_type == "SMS"
    assert nodes["first"].entry
    assert nodes["flat"].parent == "one"
    edges = edges_of(graph)
    assert edges["first", "second"].kind == "default"
    assert edges["list", "first"].kind == "default"
    assert (edges["list", "second"].kind, edges["list", "second"].label) == ("select", "x")
    assert edges["one", "flat"].kind == "do"
    assert_sound(graph)
    parse(render_svg(graph))


@pytest.mark.parametrize("steps", [[], [None, 3], "steps"])
def test_nothing_to_draw(steps: Any) -> None:
    graph = layout(steps)
    assert graph.nodes == graph.edges == ()
    root = parse(render_svg(graph))
    assert node_groups(root) == {}


def test_deep_nesting_and_long_chains_do_not_recurse() -> None:
    step: dict[str, Any] = sms("bottom")
    for level in range(1500):
        step = {"id": f"if{level}", "stepType": "If", "inputs": {}, "do": [[step]]}
    chain = [sms(f"c{number}", f"c{number + 1}") for number in range(1500)] + [sms("c1500")]
    assert len(layout([step]).nodes) == 1501
    assert len(layout(chain).nodes) == 1501


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda path: path.stem)
def test_every_flow_fixture_lays_out(path: Path) -> None:
    steps = json.loads(path.read_text(encoding="utf-8"))["steps"]
    graph = layout(steps)
    assert len([node for node in graph.nodes if node.step_type != "Missing"]) == count_steps(steps)
    assert graph.nodes[0].entry
    assert_sound(graph)
    parse(render_svg(graph))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_every_spec_example_lays_out(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))["body"]
    definition = body.get("definition") if isinstance(body, dict) else None
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, list):
        pytest.skip("no steps list in this example")
    graph = layout(steps)
    assert len([node for node in graph.nodes if node.step_type != "Missing"]) == count_steps(steps)
    assert_sound(graph)
    parse(render_svg(graph))


# ---------------------------------------------------------------------------------- render


def test_svg_structure_and_classes() -> None:
    steps = json.loads((DATA / "flows" / "If.json").read_text(encoding="utf-8"))["steps"]
    graph = layout(steps)
    svg = render_svg(
        graph, counts={"vip": 1, "perk": 12, "log": 0}, taken=[("vip", "perk")], selected="done"
    )
    root = parse(svg)
    assert classes(root) == {"flow-graph"}
    assert root.attrib["role"] == "group"
    assert root.attrib["aria-label"] == "Workflow graph: 6 steps"
    assert root.attrib["viewBox"] == f"0 0 {graph.width:g} {graph.height:g}"
    markers = list(root.iter(f"{SVG_NS}marker"))
    assert {marker.attrib["id"] for marker in markers} == {"flow-arrow", "flow-arrow-taken"}

    nodes = node_groups(root)
    assert list(nodes) == ["vip", "perk", "thanks", "log", "done", "end"]
    for step_id, group in nodes.items():
        assert group.attrib["tabindex"] == "0"
        assert group.attrib["role"] == "button"
        assert step_id in group.attrib["aria-label"]
        assert group.find(f"{SVG_NS}title") is not None
        assert group.find(f"{SVG_NS}rect") is not None
        assert "node" in classes(group)
    assert classes(nodes["vip"]) == {"node", "node-if", "entry", "executed"}
    assert classes(nodes["perk"]) == {"node", "node-wait", "executed"}
    assert classes(nodes["log"]) == {"node", "node-wait"}
    assert classes(nodes["done"]) == {"node", "node-branch", "selected"}
    assert nodes["done"].attrib["aria-current"] == "true"
    texts = [text.text for text in nodes["perk"].iter(f"{SVG_NS}text")]
    assert texts[:3] == ["Wait", "perk", "00:00:02"]
    badges = [group for group in root.iter(f"{SVG_NS}g") if "count" in classes(group)]
    assert sorted("".join(badge.itertext()) for badge in badges) == ["1", "12"]
    assert "ran 12 times" in nodes["perk"].attrib["aria-label"]

    edges = edge_groups(root)
    assert classes(edges["vip", "perk"]) == {"edge", "edge-do", "taken"}
    assert classes(edges["vip", "log"]) == {"edge", "edge-do"}
    assert classes(edges["vip", "done"]) == {"edge", "edge-after"}
    assert classes(edges["done", "end"]) == {"edge", "edge-default"}
    (path,) = edges["vip", "perk"].iter(f"{SVG_NS}path")
    assert path.attrib["marker-end"] == "url(#flow-arrow-taken)"
    assert path.attrib["d"].startswith("M")
    (label,) = edges["done", "end"].iter(f"{SVG_NS}text")
    assert (label.attrib["class"], label.text) == ("edge-label", "default")

    for element in root.iter():
        assert "style" not in element.attrib
        assert local(element.tag) not in ("style", "script", "foreignObject")
    assert "<script" not in svg


def test_long_texts_are_truncated_with_the_full_text_in_the_title() -> None:
    text = "Thank you for your order, it ships tomorrow morning"
    root = parse(
        render_svg(layout([sms("a-rather-long-step-identifier-for-this-test", text=text)]))
    )
    (group,) = node_groups(root).values()
    shown = [element.text or "" for element in group.iter(f"{SVG_NS}text")]
    assert all(len(line) <= 28 for line in shown)
    assert shown[2].endswith("…")
    title = group.find(f"{SVG_NS}title")
    assert title is not None
    assert text in (title.text or "")
    assert "a-rather-long-step-identifier-for-this-test" in (title.text or "")


def test_render_without_instance_data_has_no_badges() -> None:
    root = parse(render_svg(layout([sms("a", "b"), sms("b")])))
    assert not [group for group in root.iter(f"{SVG_NS}g") if "count" in classes(group)]
    assert not [group for group in root.iter() if classes(group) & {"taken", "selected"}]


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "]]><script>alert(1)</script><![CDATA[",
    "&lt;b&gt; &amp; &#x3C;script&#x3E;",
    "<svg onload=alert(1)><foreignObject><iframe src=javascript:alert(1)>",
]


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_definitions_are_escaped(payload: str) -> None:
    steps = [
        {
            "id": payload,
            "stepType": "Branch",
            "selectNextStep": {f"x{payload}": payload, "missing" + payload: None},
        },
        sms(f"x{payload}", text=payload),
        {"id": "odd", "stepType": payload, "inputs": {"url": payload, "method": payload}},
        {"id": "call", "stepType": "HttpRequest", "inputs": {"url": payload, "method": payload}},
        {
            "id": "voice",
            "stepType": "VoiceMessage",
            "inputs": {"action": payload, "params": {"text": payload}},
        },
    ]
    graph = layout(steps)
    svg = render_svg(graph, counts={payload: 3}, taken=[(payload, f"x{payload}")], selected=payload)
    root = parse(svg)
    for element in root.iter():
        assert local(element.tag) not in ("script", "img", "iframe", "foreignObject")
        assert not [name for name in element.attrib if name.lower().startswith("on")]
        assert "style" not in element.attrib
    assert "<script" not in svg
    assert "<img" not in svg
    # Escaped, not mangled: the attributes and texts read back as written.
    nodes = node_groups(root)
    assert payload in nodes
    assert f"x{payload}" in nodes
    assert {"entry", "executed", "selected"} <= classes(nodes[payload])
    assert "taken" in classes(edge_groups(root)[payload, f"x{payload}"])
    assert any(payload in (text.text or "") for text in root.iter(f"{SVG_NS}title"))


def test_characters_xml_cannot_carry_are_replaced() -> None:
    nasty = "a\x00b\x1bc\ud800d\uffff"
    graph = layout([sms(nasty, text=nasty), branch("b", {"c": nasty}), sms("c")])
    svg = render_svg(graph, selected=nasty)
    svg.encode("utf-8")  # no lone surrogate left
    root = parse(svg)
    assert "a\ufffdb\ufffdc\ufffdd\ufffd" in node_groups(root)
    assert by_id(graph)[nasty].id == nasty  # the model keeps the real id
