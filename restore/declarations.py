"""Read a class's declared attributes from its source, without importing its module.

``restore list samplers`` shows what each sampler accepts (``families``, ``requires``, ``uses_prior``),
which is declared once, on the sampler's class. Importing the classes would import torch and the engine;
instead the class statement is found in its module's source and the attributes are read from the syntax
tree, following base classes and re-exports through the modules' ``import`` statements. This is
setuptools' ``attr:`` approach (a literal is read statically; anything else falls back to importing): a
value that is not a literal or a class reference, a class built dynamically, or source that cannot be
found gives ``None`` and the caller imports the class as before.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClassRef:
    """A class named by its defining module and name, e.g. ``ClassRef("restore.priors.base", "Prior")``."""

    module: str
    name: str


class _Unreadable(Exception):
    """The declaration cannot be read from the source (the caller imports instead)."""


def _source_path(module: str) -> str:
    """The ``.py`` file of ``module``, found without importing it or its parent packages."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing is executed
    if spec is None:
        raise _Unreadable(module)
    if len(parts) == 1:
        if not spec.origin or not spec.origin.endswith(".py"):
            raise _Unreadable(module)
        return spec.origin
    locations = list(spec.submodule_search_locations or [])
    for i, part in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        for base in locations:
            package = os.path.join(base, part, "__init__.py")
            if os.path.isfile(package):
                if last:
                    return package
                locations = [os.path.join(base, part)]
                break
            if last and os.path.isfile(os.path.join(base, part + ".py")):
                return os.path.join(base, part + ".py")
        else:
            raise _Unreadable(module)
    raise _Unreadable(module)


@functools.lru_cache(maxsize=None)
def _module(module: str) -> tuple[dict[str, ast.ClassDef], dict[str, ClassRef | str], set[str]]:
    """``(classes, imports, patched)`` of ``module``'s top level: class statements by name, imported names
    (``ClassRef`` for ``from m import X``, a module name for ``import m``), and the names whose attributes
    are assigned at the top level (``X.attr = …``)."""
    path = _source_path(module)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    classes: dict[str, ast.ClassDef] = {}
    imports: dict[str, ClassRef | str] = {}
    patched: set[str] = set()
    for node in tree.body:
        for target in getattr(node, "targets", [getattr(node, "target", None)]):
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                patched.add(target.value.id)
        if isinstance(node, ast.ClassDef):
            classes[node.name] = node
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                source = ".".join(base + ([source] if source else []))
            for alias in node.names:
                imports[alias.asname or alias.name] = ClassRef(source, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:  # `import a.b as c` binds c to a.b; `import a.b` binds a to a
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    imports[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
    return classes, imports, patched


def _definition(ref: ClassRef, depth: int = 0) -> tuple[ClassRef, ast.ClassDef]:
    """The class statement ``ref`` names, following re-exports (``from .base import X`` in a package)."""
    if depth > 20:
        raise _Unreadable(ref)
    classes, imports, _ = _module(ref.module)
    if ref.name in classes:
        return ref, classes[ref.name]
    target = imports.get(ref.name)
    if isinstance(target, ClassRef):
        return _definition(target, depth + 1)
    raise _Unreadable(ref)


def _name_ref(module: str, node: ast.expr) -> ClassRef:
    """The class a ``Name`` or ``module.Name`` expression in ``module`` refers to (canonical: its definition)."""
    classes, imports, _ = _module(module)
    if isinstance(node, ast.Name):
        if node.id in classes:
            return ClassRef(module, node.id)
        target = imports.get(node.id)
        if isinstance(target, ClassRef):
            return _definition(target)[0]
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        target = imports.get(node.value.id)
        if isinstance(target, ClassRef):  # `from package import module`, then `module.Name`
            target = f"{target.module}.{target.name}"
        if isinstance(target, str):
            return _definition(ClassRef(target, node.attr))[0]
    raise _Unreadable(ast.dump(node))


def _value(module: str, node: ast.expr) -> Any:
    """A literal, a class reference, or a tuple/list of those."""
    if isinstance(node, (ast.Tuple, ast.List)):
        return tuple(_value(module, e) for e in node.elts)
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _name_ref(module, node)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise _Unreadable(ast.dump(node)) from None


def _base_ref(module: str, node: ast.expr) -> ClassRef:
    try:
        return _name_ref(module, node)
    except (_Unreadable, OSError, SyntaxError, ValueError, ImportError):  # e.g. torch.nn.Module: an opaque base
        return ClassRef("?", f"{module}:{ast.unparse(node)}")


def _mro(ref: ClassRef, depth: int = 0) -> list[tuple[ClassRef, ast.ClassDef | None]]:
    """The method resolution order of ``ref`` (C3, as Python computes it), ``object`` left out. A base whose
    source cannot be followed (``torch.nn.Module``) ends the order as an opaque ``(ref, None)`` entry."""
    if depth > 50:
        raise _Unreadable(ref)
    if ref.module == "?":
        return [(ref, None)]
    ref, node = _definition(ref)
    if node.decorator_list or node.keywords:  # a decorator or metaclass may set or change anything
        raise _Unreadable(ref)
    bases = [_base_ref(ref.module, b) for b in node.bases if not (isinstance(b, ast.Name) and b.id == "object")]
    sequences = [_mro(b, depth + 1) for b in bases]
    if len(bases) > 1 and any(n is None for seq in sequences for _, n in seq):
        raise _Unreadable(ref)  # the order would depend on the opaque base's own ancestors
    nodes = {r: n for seq in sequences for r, n in seq}
    sequences = [[r for r, _ in seq] for seq in sequences] + [list(bases)]
    out: list[tuple[ClassRef, ast.ClassDef | None]] = [(ref, node)]
    while any(sequences):
        for seq in sequences:
            if seq and not any(seq[0] in other[1:] for other in sequences):
                head = seq[0]
                break
        else:
            raise _Unreadable(ref)  # Python would refuse this hierarchy too
        out.append((head, nodes[head]))
        sequences = [[r for r in seq if r != head] for seq in sequences]
    return out


#: Statements of a class body that cannot bind a class attribute behind the reader's back.
_PLAIN = (ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Expr, ast.Pass)


def _declared(ref: ClassRef, node: ast.ClassDef, names: tuple[str, ...]) -> dict[str, Any]:
    if ref.name in _module(ref.module)[2]:  # `Class.attr = ...` after the class statement
        raise _Unreadable(ref)
    found: dict[str, Any] = {}
    for stmt in node.body:
        if not isinstance(stmt, _PLAIN):  # `if`, `for`, `with`, `import` … may (re)bind names conditionally
            raise _Unreadable(ref)
        targets = []
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = _value(ref.module, value)
            elif not isinstance(target, ast.Name):  # tuple unpacking and the like: stay on the safe side
                raise _Unreadable(ref)
    return found


def class_attributes(target: str, names: tuple[str, ...]) -> dict[str, Any] | None:
    """The class attributes ``names`` of the class ``target`` (``"package.module:Class"``) as declared in
    its source: literals as values, classes as :class:`ClassRef`. A name declared nowhere in the class or its
    bases is left out. ``None`` when the declaration cannot be read statically (then import the class)."""
    module, sep, name = target.partition(":")
    if not sep or not module or not name or "." in name:
        return None
    try:
        found: dict[str, Any] = {}
        for ref, node in _mro(ClassRef(module, name)):
            if len(found) == len(names):
                break
            if node is None:  # an opaque base might declare what is still missing
                return None
            for key, value in _declared(ref, node, names).items():
                found.setdefault(key, value)
        return found
    except (_Unreadable, OSError, SyntaxError, ValueError, ImportError):
        return None
