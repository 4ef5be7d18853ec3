"""The house as docs/architecture.md draws it: its package arrows are the code's imports (scripts/import_graph.py),
none runs up a layer, the only module circles are the two intended lazy ones, and the CLI starts without torch."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402


def test_the_documented_diagram_is_the_code_s_imports_and_no_arrow_runs_up():
    graph = import_graph.arrows()
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = doc.split("```\n", 2)[1].rstrip("\n").split("\n")
    assert block == import_graph.diagram(graph)
    assert import_graph.upward(graph) == []
    assert graph["hfc"] == set()  # hfc never imports baggan


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module."""
    order, low, stack, found, counter = {}, {}, [], [], [0]

    def visit(v: str) -> None:
        order[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        for w in graph[v]:
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return found


def test_the_only_module_circles_are_the_intended_lazy_ones():
    known = import_graph.modules()
    graph = {m: import_graph.imports(m, p, known) for m, p in known.items()}
    circles = sorted(_circles(graph), key=min)
    assert circles[0] == {"baggan.stylegan2.cuda", "baggan.stylegan2.ops"}  # the CUDA fallback
    # hfc.checkpoint._import_kinds: load_module imports the modules that register the file kinds
    assert len(circles) == 2 and "hfc.checkpoint" in circles[1] and all(m.startswith("hfc.") for m in circles[1])


def test_the_cli_starts_without_torch():
    code = "import sys, baggan.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"
