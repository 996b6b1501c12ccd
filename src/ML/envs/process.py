"""``env_process=true``: the training environment in a process of its own, so that it steps (and renders) while
the agent updates: DrQ-v2's loop order (act, update, then the env step) with the env step off the critical path.

A DMC frame renders in 20-50 ms on a CPU (EGL through llvmpipe); a render thread cannot share the main
thread's EGL context, a process has its own. The child is a fresh interpreter (``python -m ML.envs.process``,
no fork of a process holding torch threads or a GL context) that imports the env's class by name. It is not
a ``multiprocessing`` spawn, which would run the user's main script again (a ``Run.py`` calling
``ML.launch`` without an ``if __name__ == "__main__"`` guard would train twice, or fail).
"""

from __future__ import annotations

import pickle
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

from ML.errors import UserError


def _send_failure(conn: Connection, error: BaseException) -> None:
    """The child's exception to the parent (as a RuntimeError with its text where it does not pickle)."""
    try:
        conn.send((False, error))
    except Exception:  # noqa: BLE001 - an exception that does not pickle
        conn.send((False, RuntimeError(f"in the env process: {type(error).__name__}: {error}")))


def serve(conn: Connection) -> None:
    """The child: build the env the parent sends, then answer ``(method, argument)`` requests until
    ``close`` or EOF (the parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and SIGTERM (a checkpoint, then exit)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and closes this process itself
    try:
        env_class, args = conn.recv()
        env = env_class(**args)
        conn.send((True, (env.task_spec, env.observation_space, env.action_space)))
    except EOFError:
        return
    except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it
        _send_failure(conn, e)
        return
    try:
        while True:
            try:
                method, argument = conn.recv()
            except EOFError:
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
            payload = pickle.dumps((env_class, dict(args)))
        except (pickle.PicklingError, AttributeError, TypeError):
            raise UserError(f"env_process=true builds the env in another process, which must import its class "
                            f"by name, and {env_class!r} cannot be: define it at the top of a module, or pass "
                            "env_process=false") from None
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen([sys.executable, "-m", "ML.envs.process", str(theirs.fileno())],
                                         pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self._conn = Connection(ours.detach())
        self.pending = False
        self._conn.send_bytes(payload)
        self.task_spec, self.observation_space, self.action_space = self._answer()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _died(self) -> RuntimeError:
        try:
            code = self._process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        return RuntimeError(f"the env process died (exit code {code}; its own error, if any, is printed above)")

    def _answer(self) -> Any:
        try:
            ok, value = self._conn.recv()
        except (EOFError, OSError):  # OSError: ConnectionResetError
            raise self._died() from None
        if not ok:
            raise value
        return value

    def _request(self, method: str, argument: Any) -> None:
        try:
            self._conn.send((method, argument))
        except OSError:  # BrokenPipeError: the child is gone
            raise self._died() from None

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
        if self._process.poll() is None:
            try:
                if self.pending:
                    self.recv()
                self._conn.send(("close", None))
            except (EOFError, OSError, RuntimeError):
                pass
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._conn.close()


if __name__ == "__main__":  # the child: python -m ML.envs.process <socket fd>
    serve(Connection(int(sys.argv[1])))
