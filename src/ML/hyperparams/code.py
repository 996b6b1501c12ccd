"""Direct code in hyperparameters (``Model=nn.Linear(64,10)``), evaluated safely — never with ``eval``.

``evaluate(text)`` parses ``text`` as one Python expression and walks its syntax tree, allowing only:

* literals (numbers, strings, ``True``/``False``/``None``), lists, tuples, dicts, unary ``-``/``+`` and
  arithmetic on numbers (``3 * 32 * 32``);
* names rooted at ``nn`` (``torch.nn``), ``F`` (``torch.nn.functional``), ``torch``, a built-in short name
  (``CNN``, ``MLP``, ``ResNet18``...) or ``MyFile.attr`` with ``MyFile.py`` in the working directory;
  attribute access below them (``nn.Linear``, ``torch.float32``), never to names starting with ``_`` and
  never to file, process or code-loading entry points (``torch.load``, ``torch.hub``, ``torch.jit``...);
* calls of those objects with literal or nested allowed arguments (``nn.Sequential(nn.Flatten(),
  nn.Linear(64, 10))``, ``CNN(in_shape=[1,8,8], depth=2)``).

Everything else — imports, ``__dunder__`` access, subscripts, lambdas, comprehensions, f-strings, calls
of any other name (``open``, ``eval``, ``exec``, ``__import__``) — is refused with a one-line
``UserError`` naming what was refused.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from ML.errors import UserError

# torch attributes that read or write files, run foreign code or reach the network
_DENIED_ATTRS = frozenset({
    "load", "save", "hub", "jit", "package", "ops", "classes", "library", "utils", "from_file",
    "cpp_extension", "distributed", "multiprocessing", "compile", "export", "onnx", "backends",
    "set_default_device", "load_state_dict_from_url", "load_state_dict", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_module", "apply", "system",
})
_ROOTS = {"nn": "torch.nn", "F": "torch.nn.functional", "torch": "torch"}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def looks_like_code(text: Any) -> bool:
    """A string the safe parser should read: it has a call's parentheses."""
    return isinstance(text, str) and "(" in text and text.rstrip().endswith(")")


def _refuse(text: str, what: str) -> UserError:
    return UserError(f"refused to evaluate {text!r}: {what}; direct code may only build nn.*, torch.* or "
                     "named parts (e.g. nn.Linear(64,10)) from literal arguments")


class _Evaluator:
    def __init__(self, text: str):
        self.text = text

    def __call__(self, node: ast.AST) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise _refuse(self.text, f"{type(node).__name__} is not allowed")
        return method(node)

    def _Expression(self, node: ast.Expression) -> Any:
        return self(node.body)

    def _Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, (int, float, complex, str, bool, type(None))):
            raise _refuse(self.text, f"constant {node.value!r} is not allowed")
        return node.value

    def _List(self, node: ast.List) -> Any:
        return [self(e) for e in node.elts]

    def _Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self(e) for e in node.elts)

    def _Dict(self, node: ast.Dict) -> Any:
        if any(k is None for k in node.keys):
            raise _refuse(self.text, "** unpacking is not allowed")
        return {self(k): self(v) for k, v in zip(node.keys, node.values, strict=True)}

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        value = self(node.operand)
        if op is None or not isinstance(value, (int, float)):
            raise _refuse(self.text, "only - and + on numbers are allowed")
        return op(value)

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _BINARY.get(type(node.op))
        left, right = self(node.left), self(node.right)
        if op is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
            raise _refuse(self.text, "only arithmetic on numbers is allowed")
        if op is operator.pow and (abs(right) > 64 or abs(left) > 1e6):
            raise _refuse(self.text, "exponent too large")
        return op(left, right)

    def _dotted(self, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Attribute):
            return [*self._dotted(node.value), node.attr]
        raise _refuse(self.text, f"{type(node).__name__} is not a name")

    def _Name(self, node: ast.Name) -> Any:
        return self._lookup([node.id])

    def _Attribute(self, node: ast.Attribute) -> Any:
        return self._lookup(self._dotted(node))

    def _lookup(self, names: list[str]) -> Any:
        for name in names:
            if name.startswith("_"):
                raise _refuse(self.text, f"access to {name!r} (a private or dunder name) is not allowed")
            if name in _DENIED_ATTRS:
                raise _refuse(self.text, f"{'.'.join(names)} can read or write files or run foreign code")
        if names[0] in ("True", "False", "None") and len(names) == 1:
            return {"True": True, "False": False, "None": None}[names[0]]
        from ML.hyperparams.paths import BUILTINS, resolve

        root = names[0]
        if root in _ROOTS or root in BUILTINS:
            if root in _ROOTS:
                import importlib

                obj: Any = importlib.import_module(_ROOTS[root])
            else:
                obj = resolve(root)
            for name in names[1:]:
                try:
                    obj = getattr(obj, name)
                except AttributeError:
                    raise _refuse(self.text, f"{'.'.join(names)} does not exist") from None
            return obj
        from pathlib import Path

        if len(names) >= 2 and (Path.cwd() / f"{root}.py").is_file():
            return resolve(".".join(names))
        raise _refuse(self.text, f"name {'.'.join(names)!r} is not nn.*, torch.*, a built-in part or "
                                 "MyFile.attr")

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            raise _refuse(self.text, "only calls of named objects are allowed")
        target = self(node.func)
        if not callable(target):
            raise _refuse(self.text, f"{ast.unparse(node.func)} is not callable")
        args, kwargs = [], {}
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _refuse(self.text, "* unpacking is not allowed")
            args.append(self(arg))
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _refuse(self.text, "** unpacking is not allowed")
            kwargs[keyword.arg] = self(keyword.value)
        try:
            return target(*args, **kwargs)
        except (TypeError, ValueError, RuntimeError) as e:
            raise UserError(f"evaluating {self.text!r} failed: {type(e).__name__}: {e}") from None


def evaluate(text: str) -> Any:
    """The object ``text`` (one expression) builds, under the rules in the module docstring."""
    if len(text) > 2000:
        raise _refuse(text[:40] + "...", "expression longer than 2000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise UserError(f"cannot parse {text!r} as a Python expression: {e.msg}") from None
    return _Evaluator(text)(tree)


__all__ = ["evaluate", "looks_like_code"]
