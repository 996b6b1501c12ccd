"""``env_process=true``: the training environment in a process of its own, so that it steps (and renders) while
the agent updates: DrQ-v2's loop order (act, update, then the env step) with the env step off the critical path.

A DMC frame renders in 20-50 ms on a CPU (EGL through llvmpipe); a render thread cannot share the main
thread's EGL context, a process has its own. The env is built in the child from its class (imported there
by name) and arguments: a spawned interpreter, no fork of a process holding torch threads or a GL context.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
from multiprocessing.connection import Connection
from typing import Any

from ML.errors import UserError


def _send_failure(conn: Connection, error: BaseException) -> None:
    """The child's exception to the parent (as a RuntimeError with its text where it does not pickle)."""
    try:
        conn.send((False, error))
    except Exception:  # noqa: BLE001 - an exception that does not pickle
        conn.send((False, RuntimeError(f"in the env process: {type(error).__name__}: {error}")))


def _serve(conn: Connection, env_class: Any, args: dict[str, Any]) -> None:
    """The child: build the env, then answer ``(method, argument)`` requests until ``close`` or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and SIGTERM (checkpoint, exit) and
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # closes this process itself
    try:
        env = env_class(**args)
        conn.send((True, (env.task_spec, env.observation_space, env.action_space)))
    except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it
        _send_failure(conn, e)
        return
    try:
        while True:
            try:
                method, argument = conn.recv()
            except EOFError:  # the parent is gone
                return
            if method == "close":
                return
            try:
                result = env.step(argument) if method == "step" else env.reset(seed=argument)
                conn.send((True, result))
            except BaseException as e:  # noqa: BLE001
                _send_failure(conn, e)
    finally:
        env.close()


class EnvProcess:
    """An env stepping in a child process: ``send(action)`` returns at once, ``recv()`` waits for the step's
    ``(obs, reward, terminated, truncated, info)``; ``reset`` and ``step`` wait as a local env's do. The
    child's exceptions are raised here; a child that died is a ``RuntimeError``."""

    def __init__(self, env_class: Any, args: dict[str, Any]):
        try:
            pickle.dumps(env_class)
        except (pickle.PicklingError, AttributeError, TypeError):
            raise UserError(f"env_process=true builds the env in another process, which must import its class "
                            f"by name, and {env_class!r} cannot be: define it at the top of a module, or pass "
                            "env_process=false") from None
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, env_class, dict(args)), daemon=True,
                                         name="UnifiedML-env")
        self._process.start()
        child.close()
        self.pending = False
        self.task_spec, self.observation_space, self.action_space = self._answer()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _answer(self) -> Any:
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):  # OSError: ConnectionResetError
            self._process.join(5)
            raise RuntimeError(f"the env process died (exit code {self._process.exitcode}; its own error, if "
                               "any, is printed above)") from None
        if not ok:
            raise value
        return value

    def _request(self, method: str, argument: Any) -> None:
        try:
            self._conn.send((method, argument))
        except OSError:  # BrokenPipeError: the child is gone
            self._process.join(5)
            raise RuntimeError(f"the env process died (exit code {self._process.exitcode}; its own error, if "
                               "any, is printed above)") from None

    def reset(self, *, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
        self._request("reset", seed)
        return self._answer()

    def send(self, action: Any) -> None:
        self._request("step", action)
        self.pending = True

    def recv(self) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.pending = False
        return self._answer()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.send(action)
        return self.recv()

    def close(self) -> None:
        if self._process.is_alive():
            try:
                if self.pending:
                    self.recv()
                self._conn.send(("close", None))
            except (EOFError, OSError, RuntimeError):
                pass
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()
