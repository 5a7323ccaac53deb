"""One-way layers: no module imports a module of a higher layer (README "Layers").

Every import statement of the package is read with `ast` — including imports inside functions and
under `if TYPE_CHECKING:`, because a type-only import that climbs is the same tangle waiting to
become a runtime one. A module belongs to the layer of its longest matching prefix in `LAYERS`;
a module no prefix matches fails the test, so a new folder has to be placed in the order
deliberately. Imports within one layer are free.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "models", "bus", "services", "live", "handlers", "server", "ops")

# Lowest first. Keep in step with the table in the README's "Layers" section.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        ("core", "server.settings", "server.logging", "server.metrics"),
    ),
    ("models", ("models",)),
    ("bus", ("bus",)),
    ("services", ("services",)),
    ("live", ("live",)),
    ("node", ("server.context", "server.scheduler", "server.room_probe")),
    ("handlers", ("handlers",)),
    ("app", ("server", "ops")),
    ("entry", ("server.cli",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """Index in `LAYERS` of the longest prefix matching `module` (None: unplaced)."""
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), index)
    return None if best is None else best[1]


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of the package modules `tree` imports (relative imports resolved)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from services import policy` imports the module services.policy.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def package_files() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def known(name: str) -> bool:
    """True if `name` is a module or package of ours (not a function imported from one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_every_module_is_placed_in_a_layer() -> None:
    unplaced = [
        module_name(path) for path in package_files() if layer_of(module_name(path)) is None
    ]
    assert not unplaced, f"modules in no layer (add them to LAYERS and the README): {unplaced}"


def test_no_module_imports_a_higher_layer() -> None:
    climbing: list[str] = []
    for path in package_files():
        module = module_name(path)
        own = layer_of(module)
        assert own is not None
        tree = ast.parse(path.read_text(), filename=str(path))
        for target in sorted(imported_modules(tree, module, path.name == "__init__.py")):
            if not known(target):
                continue
            theirs = layer_of(target)
            if theirs is not None and theirs > own:
                climbing.append(
                    f"{module} ({LAYERS[own][0]}) imports {target} ({LAYERS[theirs][0]})"
                )
    assert not climbing, "imports that climb a layer:\n" + "\n".join(climbing)


def test_the_check_sees_a_climbing_import() -> None:
    """The reader must catch the forms an import takes: plain, from-import of a module, relative,
    and inside a function or a TYPE_CHECKING block."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import handlers.base\n"
        "from services import policy\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from live.rooms import RoomManager\n"
        "def f():\n"
        "    from ops import replay\n"
    )
    names = imported_modules(ast.parse(source), "models.repo.x", is_package=False)
    assert {"handlers.base", "services.policy", "live.rooms", "ops.replay"} <= names
    assert "models.repo.sibling" in names
    model_layer = layer_of("models.repo.x")
    assert model_layer is not None
    climbing = {name for name in names if known(name) and (layer_of(name) or 0) > model_layer}
    assert climbing == {
        "handlers.base",
        "services",
        "services.policy",
        "live.rooms",
        "ops",
        "ops.replay",
    }


def test_layer_order_matches_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Layers", 1)[1].split("\n### ", 1)[0]
    positions = [
        section.find(f"| {index + 1} | {name} |") for index, (name, _) in enumerate(LAYERS)
    ]
    assert -1 not in positions, f"README 'Layers' table must list every layer in order: {LAYERS}"
