"""The package → package imports of the code (every `import`, at the top of a module or inside a function), the
arrows of docs/architecture.md's diagram: `python scripts/import_graph.py` prints them one package per line, top layer
first, and fails if an arrow runs up a layer or two packages import each other (tests/test_architecture.py)."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The packages of the diagram, top layer first: an arrow may only point down this list.
LAYERS = ("baggan.cli", "baggan.label", "baggan.quickstart", "baggan.evaluate", "baggan.synth", "baggan.oneshot",
          "baggan.stylegan2", "baggan.metrics", "baggan.data", "baggan", "hfc")
ENTRY = {"baggan.__main__": "baggan.cli"}  # `python -m baggan` is the CLI


def package_of(module: str) -> str:
    """The diagram's package of a module: the longest LAYERS name it starts with."""
    module = ENTRY.get(module, module)
    return max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every module of baggan/ and hfc/."""
    out = {}
    for path in sorted([*root.glob("baggan/**/*.py"), *root.glob("hfc/**/*.py")]):
        parts = list(path.relative_to(root).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of baggan/ and hfc/ that module `name` imports (a `from P import X` of a submodule X counts as
    P.X only)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            found.update(subs if len(subs) == len(node.names) else [base, *subs])
    return {m for m in found if m in known and m != name}


def arrows(root: Path = ROOT) -> dict[str, set[str]]:
    """Package → the packages it imports."""
    known = modules(root)
    out: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        src = package_of(name)
        out[src].update(package_of(m) for m in imports(name, path, known))
        out[src].discard(src)
    return out


def diagram(graph: dict[str, set[str]]) -> list[str]:
    """One line per package, top layer first: `package → imported packages` (in layer order)."""
    width = max(map(len, LAYERS))
    return [f"{p:<{width}} → {', '.join(sorted(graph.get(p, ()), key=LAYERS.index)) or '(nothing of ours)'}"
            for p in LAYERS]


def upward(graph: dict[str, set[str]]) -> list[str]:
    """The arrows that point up the layers (none in a sound house)."""
    return [f"{a} → {b}" for a in LAYERS for b in sorted(graph.get(a, ())) if LAYERS.index(b) < LAYERS.index(a)]


def main() -> int:
    """Print the diagram's lines; exit 1 naming any arrow that runs up."""
    graph = arrows()
    print("\n".join(diagram(graph)))
    bad = upward(graph)
    for arrow in bad:
        print(f"upward import: {arrow}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
