"""The house has one direction: `bot → commands, integrations → handlers → storage`, no cycles.

An AST walk over the five packages: every import of ours (type-checking imports too) must run
to the same package or one below it, `commands` and `integrations` never reach each other,
and no set of modules imports itself round.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Each package and the packages it may import besides itself.
MAY_IMPORT = {
    "storage": set[str](),
    "handlers": {"storage"},
    "commands": {"handlers", "storage"},
    "integrations": {"handlers", "storage"},
    "bot": {"commands", "integrations", "handlers", "storage"},
}
PACKAGES = tuple(MAY_IMPORT)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imported(tree: ast.AST, here: str, is_package: bool) -> Iterator[str]:
    """Every name of ours `tree` imports: modules, and `module.name` for `from … import name`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = parts[: len(parts) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    """Module → the modules of ours it imports (a name resolves to the longest module)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in imported(tree, name, path.name == "__init__.py"):
            if target.split(".")[0] not in MAY_IMPORT:
                continue
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def package_table(edges: dict[str, set[str]]) -> Counter[tuple[str, str]]:
    """How many module-to-module imports run from each package to each package."""
    return Counter(
        (source.split(".")[0], target.split(".")[0])
        for source, targets in edges.items()
        for target in targets
    )


def test_imports_run_one_way() -> None:
    against = sorted(
        f"{source} imports {target}"
        for source, targets in graph().items()
        for target in targets
        if (up := target.split(".")[0]) != source.split(".")[0]
        and up not in MAY_IMPORT[source.split(".")[0]]
    )
    assert against == []


def test_no_module_imports_itself_round() -> None:
    assert cycles(graph()) == []


def test_the_walk_sees_the_imports_it_checks() -> None:
    """The walk is not vacuous: it finds the edges every layer is known to have."""
    table = package_table(graph())
    for edge in [("bot", "handlers"), ("handlers", "storage"), ("integrations", "handlers")]:
        assert table[edge] > 0, edge
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_handlers_module_is_over_400_lines() -> None:
    long = {
        module_name(path): lines
        for path in (ROOT / "handlers").rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


if __name__ == "__main__":
    table = package_table(graph())
    print("from \\ to", *PACKAGES, sep="\t")
    for source in PACKAGES:
        print(source, *(table[source, target] for target in PACKAGES), sep="\t")
    for group in cycles(graph()):
        print("cycle:", " ↔ ".join(group))
