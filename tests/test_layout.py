"""The package's layout holds: imports point one way and no module grows past
500 lines."""
import ast
from pathlib import Path

import flask_smstrack

PACKAGE = Path(flask_smstrack.__file__).resolve().parent

#: Lower layers first: a module may import its own layer and the ones above
#: it in this list, never the ones below.
LAYERS = [
    {"config", "errors"},
    {"state", "models"},
    {"schemas"},
    {"auth", "manage"},
    {"tracking", "reports", "sms", "db", "integrations"},
    {"demo", "jobs"},
    {"web", "cli"},
    {"extension"},
    {"standalone", "__init__"},
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" not in path.relative_to(PACKAGE).parts:
            yield path


def _runtime_imports(tree):
    """``from .x import y`` nodes, leaving out ``if TYPE_CHECKING:`` blocks."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level and id(n) not in skip]


def test_every_module_is_in_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()}
    assert tops - set(RANK) == set()


def test_imports_point_one_way():
    upward = []
    for path in _modules():
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in _runtime_imports(ast.parse(path.read_text())):
            base = parts[:-1][: len(parts) - node.level] if node.level > 1 else parts[:-1]
            target = base + (node.module.split(".") if node.module else [a.name for a in node.names][:1])
            if RANK[target[0]] > RANK[parts[0]]:
                upward.append(f"{'.'.join(parts)} imports {'.'.join(target)} (line {node.lineno})")
    assert upward == []


def test_no_module_passes_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in _modules() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
