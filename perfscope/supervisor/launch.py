"""What the supervisor starts: the child's command line and environment."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from perfscope.errors import PerfscopeError
from perfscope.options import ENV_OPTIONS, CollectorOptions
from perfscope.paths import inject_dir
from perfscope.runtime.bootstrap import ENV_CLAIM, ENV_RUN_DIR


@dataclass(frozen=True)
class Target:
    """The program to run: `python SCRIPT ARGS`, `python -m MODULE ARGS` or any `COMMAND ARGS`."""

    mode: str  # script | module | command
    command: list[str]
    label: str  # names the default run directory
    program_argv: list[str] | None = None  # set when a launcher (torchrun) runs the program

    @property
    def argv(self) -> list[str]:
        """What the program sees as sys.argv (for a script: the script and its arguments)."""
        if self.program_argv is not None:
            return self.program_argv
        return self.command[1:] if self.mode in ("script", "module") else self.command


def script_target(script: str, args: list[str]) -> Target:
    if not Path(script).is_file():
        raise PerfscopeError(
            f"script not found: {script} (give a Python file, -m MODULE, or -- COMMAND)"
        )
    return Target("script", [sys.executable, script, *args], Path(script).stem or "run")


def module_target(module: str, args: list[str]) -> Target:
    return Target("module", [sys.executable, "-m", module, *args], module.rsplit(".", 1)[-1])


def command_target(command: list[str]) -> Target:
    if not command:
        raise PerfscopeError("no command after --; usage: perfscope run -- COMMAND [ARGS]...")
    if shutil.which(command[0]) is None:
        raise PerfscopeError(f"command not found: {command[0]}")
    return Target("command", list(command), Path(command[0]).name)


def torchrun_target(program: Target, nproc: int) -> Target:
    """The script or module run by torchrun on this machine, `nproc` ranks (`--standalone`: a
    free port of its own, so that runs side by side never meet)."""
    if program.mode == "command":
        raise PerfscopeError(
            "--nproc-per-node launches a script or -m MODULE through torchrun; with -- COMMAND, "
            "give the torchrun command itself: perfscope run -- torchrun --nproc-per-node N ..."
        )
    if importlib.util.find_spec("torch") is None:
        raise PerfscopeError(
            f"--nproc-per-node runs torchrun, which needs torch in {sys.executable}; install torch "
            "there, or give your own launcher after --"
        )
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, f"--nproc-per-node={nproc}", *program.command[1:]]
    return Target(program.mode, command, program.label, program_argv=program.argv)


def child_environment(run_dir: Path, options: CollectorOptions | None = None) -> dict[str, str]:
    """The caller's environment plus what makes the child's Python load perfscope's hooks."""
    env = dict(os.environ)
    env[ENV_OPTIONS] = (options or CollectorOptions()).to_env()
    inject = str(inject_dir())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (inject, env.get("PYTHONPATH")) if p)
    env[ENV_RUN_DIR] = str(run_dir)
    env[ENV_CLAIM] = "1"
    return env
