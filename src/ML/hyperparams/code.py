"""Direct code in hyperparameters (``Model=nn.Linear(64,10)``), evaluated by an allowlist — never ``eval``."""

from __future__ import annotations

import ast
import inspect
import operator
from collections.abc import Callable
from typing import Any

from ML.errors import UserError
from ML.hyperparams import names as registry

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_LITERAL_NAMES = {"True": True, "False": False, "None": None}
_ROOTS = {"nn": "torch.nn", "F": "torch.nn.functional", "torch": "torch"}
_ALLOWED = ("direct code may only call nn.* module classes, built-in parts (CNN, MLP...) and MyFile.py names "
            "with literal arguments, e.g. nn.Linear(64,10)")


def looks_like_code(text: Any) -> bool:
    """A string the safe parser should read: it has a call's parentheses."""
    return isinstance(text, str) and "(" in text and text.rstrip().endswith(")")


def _refuse(text: str, what: str) -> UserError:
    return UserError(f"refused to evaluate {text!r}: {what}; {_ALLOWED}")


def _is_module_class(obj: Any) -> bool:
    from torch import nn

    return inspect.isclass(obj) and issubclass(obj, nn.Module)


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
        return {self(k): self(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}

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
        if node.id in _LITERAL_NAMES:
            return _LITERAL_NAMES[node.id]
        return self._value(self._dotted(node))

    def _Attribute(self, node: ast.Attribute) -> Any:
        return self._value(self._dotted(node))

    def _lookup(self, dotted: list[str]) -> tuple[Any, str]:
        """The object a dotted name stands for, and its kind: ``user`` (MyFile.py), ``builtin`` or ``torch``."""
        name = ".".join(dotted)
        if any(part.startswith("_") for part in dotted):
            raise _refuse(self.text, f"access to {name!r} (a private or dunder name) is not allowed")
        root = dotted[0]
        if root in registry.BUILTINS:
            obj, kind = registry.builtin(root), "builtin" if len(dotted) == 1 else "torch"
        elif root in _ROOTS:
            import importlib

            obj, kind = importlib.import_module(_ROOTS[root]), "torch"
        elif len(dotted) >= 2 and (local := registry.local_file(root)) is not None:
            return registry.from_file(local, dotted[1:], name), "user"
        else:
            raise _refuse(self.text, f"name {name!r} is not nn.*, F.*, torch.*, a built-in part or MyFile.attr")
        try:
            return registry.getattrs(obj, dotted[1:]), kind
        except AttributeError:
            raise _refuse(self.text, f"{name} does not exist") from None

    def _value(self, dotted: list[str]) -> Any:
        """A name used as a value: an nn module class, a built-in part, an F function, a dtype or a user name."""
        import torch

        obj, kind = self._lookup(dotted)
        functional = (dotted[0] == "F" and len(dotted) == 2) or (dotted[:3] == ["torch", "nn", "functional"]
                                                                  and len(dotted) == 4)
        if kind in ("user", "builtin") or _is_module_class(obj) or isinstance(obj, torch.dtype) or functional:
            return obj
        raise _refuse(self.text, f"{'.'.join(dotted)} is not an nn module class, an F function, a dtype, "
                                 "a built-in part or a MyFile name")

    def _Call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            raise _refuse(self.text, "only calls of named objects are allowed")
        dotted = self._dotted(node.func)
        target, kind = self._lookup(dotted)
        if not (kind == "user" or _is_module_class(target) or (kind == "builtin" and inspect.isclass(target))):
            raise _refuse(self.text, f"{'.'.join(dotted)}(...) is not a constructor of an nn module, a built-in "
                                     "part or a MyFile name")
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
    """The object ``text`` (one expression) builds, under the rules in the module docstring.

    ``evaluate(text)`` parses ``text`` as one Python expression and walks its syntax tree. It builds only:

    * literals (numbers, strings, ``True``/``False``/``None``), lists, tuples, dicts, unary ``-``/``+`` and
      arithmetic on numbers (``3 * 32 * 32``);
    * calls of constructors: ``nn.*`` module classes (``nn.Linear``, ``nn.Sequential``), the built-in parts
      (``CNN``, ``MLP``, ``ResNet18``...) and names from ``MyFile.py`` in the working directory (the user's own
      code), with arguments built by these same rules;
    * as argument values: those classes, ``F.*`` functions (``activation=F.gelu``) and dtypes (``torch.float32``).

    Everything else is refused with a one-line ``UserError`` naming what was refused: any other call
    (``torch.set_default_dtype(...)``, ``torch.load(...)``, ``os.system(...)``, ``open``, ``eval``), any other
    name, imports, ``_private`` or ``__dunder__`` access, subscripts, lambdas, comprehensions, f-strings.
    """
    if len(text) > 2000:
        raise _refuse(text[:40] + "...", "expression longer than 2000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise UserError(f"cannot parse {text!r} as a Python expression: {e.msg}") from None
    return _Evaluator(text)(tree)


__all__ = ["evaluate", "looks_like_code"]
