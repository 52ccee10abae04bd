"""The library's public face: what app/ and the notebooks use of `ainnoseg`
is named in the `__all__` of the package or module it comes from.

Every app/*.py and every notebook code cell is read as Python (ast). An
import (`import ainnoseg.x`, `from ainnoseg.x import y`) and an attribute
chain on an imported name (`ainnoseg.x.y`, `compare.run_models` after `from
ainnoseg.analysis import compare`) is followed link by link: each link must
be in the `__all__` of the package or module before it. A module without
`__all__` offers the public names it defines itself (not `_private` ones,
not what it imported). The chain stops at the first thing that is not a
module (a function, a class): its own attributes are its business.
"""

import ast
import importlib
import inspect
import json
import types
from pathlib import Path

import pytest

import ainnoseg

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted((ROOT / "app").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The rooms ainnoseg names (engine and cli are reached through jobs and the command line).
PACKAGES = ["ainnoseg", *(f"ainnoseg.{name}" for name in ainnoseg.__all__
                          if hasattr(getattr(ainnoseg, name), "__path__"))]


def _notebook_source(path):
    """The notebook's code cells as one program (IPython magics left out), and
    where each of its lines comes from ("cell 4, line 2")."""
    lines, places = [], []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        for number, line in enumerate("".join(cell["source"]).splitlines(), 1):
            if not line.lstrip().startswith(("%", "!")):
                lines.append(line)
                places.append(f"cell {index}, line {number}")
    return "\n".join(lines), places


def _defined_names(module):
    """The names a module without `__all__` defines at its top level."""
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        names.update(name.id for target in targets for name in ast.walk(target)
                     if isinstance(name, ast.Name))
    return names


def public_names(module):
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {name for name in _defined_names(module) if not name.startswith("_")}


def _attribute(module, name):
    """`module.name`, importing a submodule that its package does not import."""
    if hasattr(module, name):
        return getattr(module, name)
    if not isinstance(module, types.ModuleType):
        raise TypeError(f"{module!r} is not a module")
    return importlib.import_module(f"{module.__name__}.{name}")


def _follow(current, attributes, where, problems):
    """Check each of `attributes` in turn from the module `current`."""
    for attribute in attributes:
        if not isinstance(current, types.ModuleType):
            return
        if attribute not in public_names(current):
            problems.append(f"{where}: {current.__name__}.{attribute} is not in "
                            f"{current.__name__}.__all__")
            return
        current = _attribute(current, attribute)


def _resolve(dotted):
    """The object `dotted` ("ainnoseg.analysis.compare") names; None if none."""
    current = importlib.import_module("ainnoseg")
    for name in dotted.split(".")[1:]:
        try:
            current = _attribute(current, name)
        except (ImportError, TypeError):  # TypeError: not a module, so no submodules
            return None
    return current


def _chain(node):
    """(name, [attributes]) of `name.a.b`, else None."""
    attributes = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    return (node.id, attributes[::-1]) if isinstance(node, ast.Name) else None


def _imports(tree, problems, label):
    """{local name: the dotted path it stands for} of the ainnoseg imports,
    each import checked on the way."""
    bound = {}
    for node in ast.walk(tree):
        where = label(node.lineno) if isinstance(node, (ast.Import, ast.ImportFrom)) else None
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ainnoseg":
                    _follow(_resolve("ainnoseg"), alias.name.split(".")[1:], where, problems)
                    bound[alias.asname or "ainnoseg"] = alias.name if alias.asname else "ainnoseg"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ainnoseg":
            _follow(_resolve("ainnoseg"), node.module.split(".")[1:], where, problems)
            for alias in node.names:
                _follow(_resolve(node.module), [alias.name], where, problems)
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def check_source(source, label):
    """What `source` uses of ainnoseg that is not public, as sentences;
    `label(line number)` says where."""
    tree = ast.parse(source)
    problems = []
    bound = _imports(tree, problems, label)
    for node in ast.walk(tree):
        chain = _chain(node) if isinstance(node, ast.Attribute) else None
        if chain and chain[0] in bound:
            _follow(_resolve(bound[chain[0]]), chain[1], label(node.lineno), problems)
    return sorted(set(problems))


@pytest.mark.parametrize("path", APPS, ids=lambda path: path.name)
def test_the_apps_use_only_public_names(path):
    problems = check_source(path.read_text(), lambda line: f"{path.name}:{line}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebooks_use_only_public_names(path):
    source, places = _notebook_source(path)
    problems = check_source(source, lambda line: f"{path.name}, {places[line - 1]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_names_its_public_face_and_each_name_exists(package):
    module = importlib.import_module(package)
    assert hasattr(module, "__all__"), f"{package} has no __all__"
    missing = [name for name in module.__all__ if _resolve(f"{package}.{name}") is None]
    assert not missing, f"{package}.__all__ names what it does not hold: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{package}.__all__ repeats a name"


def test_the_errors_a_user_can_cause_are_at_the_top():
    for name in ("CheckpointError", "ConfigError", "DataError", "RunDirError", "RunBusy",
                 "JobError"):
        assert name in ainnoseg.__all__ and issubclass(getattr(ainnoseg, name), Exception)


@pytest.mark.parametrize("source, problem", [
    ("from ainnoseg.checkpoints.files import CheckpointError", "ainnoseg.checkpoints.files"),
    ("import ainnoseg\nainnoseg.checkpoints.files.load_model", "ainnoseg.checkpoints.files"),
    ("from ainnoseg import viz\nviz._palette", "ainnoseg.viz._palette"),
    ("from ainnoseg import viz\nviz.np", "ainnoseg.viz.np"),
    ("import ainnoseg.analysis as analysis\nanalysis.images.load_sample",
     "ainnoseg.analysis.images"),
])
def test_the_check_finds_a_name_that_is_not_public(source, problem):
    problems = check_source(source, str)
    assert problems and problem in problems[0], problems


def test_the_check_passes_public_names_and_stops_at_a_function():
    source = ("import ainnoseg\nfrom ainnoseg import CheckpointError, viz\n"
              "from ainnoseg.analysis import compare\n"
              "ainnoseg.load\nainnoseg.data.build_dataset\nviz.overlay\n"
              "compare.run_models.__name__\nainnoseg.load.__doc__\n")
    assert check_source(source, str) == []
