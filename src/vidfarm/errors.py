"""One error hierarchy for vidfarm; every message says what went wrong and what to do.

VidfarmError
├── WorkflowError              a workflow file or graph cannot be used
│   ├── WorkflowInvalid        checked against /object_info: carries the list of Problems
│   └── JobSpecInvalid         a job's options cannot be used: carries one OptionProblem per option
├── InputImageError            an image to upload is not an image, or too big
├── InputVideoError            a video to upload does not decode, or is too big
├── TilingError                an upscale cannot be planned (bad sizes, or not even the smallest tile fits)
├── JobRefused                 the service will not take a job (bad options, too long a prompt, a bad photo)
│   ├── QuotaExceeded          today's jobs or GPU minutes are used up
│   └── FleetRefused           no GPU may be rented for the job: a budget is spent, or no worker came in time
├── ConfigError                a setting is missing, malformed or out of range (say which, and how to set it)
├── ProcessStartFailed         a process vidfarm starts (the token proxy, a helper) did not come up
├── PlanError                  a long video cannot be planned as asked
├── DispatchFailed             a long video cannot finish: which task, and each worker's reason
├── SphericalError             an MP4 cannot take or does not carry spherical metadata
├── VRFormatError              a projection/layout or frame size that VR players would not accept
├── ProviderError              a GPU rental provider refused or did not answer
│   └── WorkerNotReady         a rented worker cannot render yet: which worker, and what it lacks
├── BatchError                 a batch's parameter file, grid or notebook cannot be used
├── ModelFetchError            a model file is missing, corrupt, or does not fit on the disk
└── ComfyError                 talking to a ComfyUI server
    ├── ServerUnreachable      no answer (timed out), or not reachable for longer than allowed
    │   └── ServerRefused      nothing listens there: connection refused or reset, or the name does not resolve
    ├── AuthRejected           401/403: wrong or missing token
    ├── PromptRejected         /prompt said no (400, or 200 with node_errors): carries Problems
    ├── ExecutionFailed        the prompt ran and a node raised
    ├── ExecutionInterrupted   the prompt was interrupted / cancelled
    ├── PromptLost             the server forgot the prompt (restart) and the re-submission was lost too
    ├── WorkerStalled          no sign of progress for longer than allowed (a hung worker)
    └── OutputInvalid          an output file is missing, empty or does not decode

Stopped (a BaseException, like KeyboardInterrupt)  this process was told to stop (SIGINT, SIGTERM) while it waited
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a workflow cannot run, in ComfyUI's own vocabulary (`type` is ComfyUI's error type).

    `kind` is the verdict a person acts on (see `vidfarm.workflow.verdict.KINDS`): upgrade ComfyUI, install a custom
    node pack, fetch a model file, or an editor feature the converter does not handle; empty for the rest.
    """

    node_id: str
    class_type: str
    type: str
    input_name: str | None
    message: str
    fix: str = ""
    kind: str = ""

    def __str__(self) -> str:
        where = f"node {self.node_id} ({self.class_type})"
        if self.input_name:
            where += f" input '{self.input_name}'"
        text = f"{where}: {self.message}"
        text = f"{text} - {self.fix}" if self.fix else text
        return f"[{self.kind}] {text}" if self.kind else text


class VidfarmError(Exception):
    """Base of every error vidfarm raises on purpose."""


class WorkflowError(VidfarmError):
    """A workflow file or graph cannot be used as it is."""


def _problem_lines(problems: list[Problem]) -> str:
    return "\n".join(f"  - {p}" for p in problems)


class WorkflowInvalid(WorkflowError):
    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"workflow {name} cannot run on this server:\n{_problem_lines(problems)}")


@dataclass(frozen=True)
class OptionProblem:
    """One option of a job that cannot be used: which, what was wrong, and what is allowed instead."""

    option: str
    problem: str
    allowed: str

    def __str__(self) -> str:
        return f"{self.option}: {self.problem} (allowed: {self.allowed})"


class JobSpecInvalid(WorkflowError):
    """A job's options cannot be used; `problems` has every one, so a person can fix them all at once."""

    def __init__(self, problems: list[OptionProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class InputImageError(VidfarmError):
    """An input image is unreadable, of the wrong type or too big."""


class InputVideoError(VidfarmError):
    """An input video is unreadable, of the wrong type or too big."""


class TilingError(VidfarmError):
    """An upscale cannot be planned: impossible sizes, or not even the smallest tile fits in free memory."""


class ConfigError(VidfarmError):
    """A setting is missing, malformed or out of range; the message names it and how to set it."""


class ProcessStartFailed(VidfarmError):
    """A process vidfarm starts (the token proxy, a helper) did not come up; the message says what it printed."""


class PlanError(VidfarmError):
    """The requested video cannot be planned as asked."""


class DispatchFailed(VidfarmError):
    """A long video cannot finish: says which task and why, per worker."""


class SphericalError(VidfarmError):
    """An MP4 cannot take or does not carry spherical metadata (what is wrong is in the message)."""


class VRFormatError(VidfarmError):
    """A projection/layout combination or frame size that players would not accept."""


class JobRefused(VidfarmError):
    """The service refuses a job request; the message tells the person what to change (`problems`: per option)."""

    def __init__(self, message: str, problems: list[OptionProblem] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)


class QuotaExceeded(JobRefused):
    """The person has used today's jobs or GPU minutes; nothing about the request itself is wrong."""


class ProviderError(VidfarmError):
    """A GPU rental provider (Vast.ai, RunPod) refused a request or did not answer."""


class FleetRefused(JobRefused):
    """The fleet will not rent a worker for a job: a budget is used up, or no worker came within the wait.

    `reason` names the case ("user_budget", "fleet_budget", "no_worker") and `values` its figures, so the service can
    say it in the user's language; str() is the English text."""

    def __init__(self, reason: str, message: str, **values: float | str) -> None:
        self.reason = reason
        self.values = values
        super().__init__(message)


class WorkerNotReady(ProviderError):
    """A worker that answers "running" but cannot render: what it lacks, on which worker."""

    def __init__(
        self,
        worker: str,
        reason: str,
        *,
        missing_models: list[str] | None = None,
        missing_nodes: list[str] | None = None,
        advice: str = "",
    ) -> None:
        self.worker = worker
        self.missing_models = missing_models or []
        self.missing_nodes = missing_nodes or []
        parts = [reason] if reason else []
        if self.missing_models:
            parts.append(f"lacks model {', '.join(self.missing_models)}")
        if self.missing_nodes:
            parts.append(f"lacks node class {', '.join(self.missing_nodes)}")
        super().__init__(f"worker {worker} " + " and ".join(parts) + (f" ({advice})" if advice else ""))


class BatchError(VidfarmError):
    """A batch's parameter file, grid or notebook cannot be used."""


class ModelFetchError(VidfarmError):
    """A model file could not be downloaded, is corrupt, or does not fit on the disk."""


class ComfyError(VidfarmError):
    """Something went wrong talking to a ComfyUI server."""


class ServerUnreachable(ComfyError):
    pass


class ServerRefused(ServerUnreachable):
    """Refused, reset or unresolvable: a dead or restarting server, told apart from a hung one (no answer)."""


class AuthRejected(ComfyError):
    pass


class PromptRejected(ComfyError):
    def __init__(self, message: str, problems: list[Problem]) -> None:
        self.problems = problems
        detail = f"\n{_problem_lines(problems)}" if problems else ""
        super().__init__(f"{message}{detail}")


class ExecutionFailed(ComfyError):
    def __init__(self, message: str, *, node_id: str | None = None, node_type: str | None = None) -> None:
        self.node_id = node_id
        self.node_type = node_type
        super().__init__(message)


class ExecutionInterrupted(ComfyError):
    pass


class PromptLost(ComfyError):
    pass


class WorkerStalled(ComfyError):
    pass


class OutputInvalid(ComfyError):
    pass


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived while a prompt ran (`vidfarm.comfy.stopping`). Not a VidfarmError: like
    KeyboardInterrupt it must pass every `except Exception` on its way to the one place that cancels the prompt."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
