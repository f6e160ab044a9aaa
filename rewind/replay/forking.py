"""The branch addon: replay a session up to a step, change that step, and go on.

``rewind branch SESSION --at N`` and ``rewind mutate`` re-run a recorded command behind
this addon (and the recorder, so the run becomes a new session).

Branch (``ForkSpec.fault`` is ``None``): the engine holds only the steps before N, and
answers them exactly as replay does. The first request it cannot answer is the fork:
normally the agent's step N, or earlier if the agent already asked for something else.
The fork gets the edited response (``--response``), or goes upstream with its JSON body
merge-patched (``--request-patch``), or simply goes upstream; every request after it
goes upstream too.

Fault (``rewind mutate``, ``branch --fault``): the engine holds every step and the run
stays offline, as a replay. The first time recorded step N would be served, the fault
is served instead and N is put back, so a retry of the same request gets the recorded
answer (the fault is transient). A ``Hang`` is never answered (the playback server holds
the connection until the client gives up); a ``Reset`` kills the connection without an
answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

from rewind.capture.listeners import is_passthrough
from rewind.capture.recorder import META_PREPARED, META_STEP
from rewind.replay.addon import ReplayAddon, make_response
from rewind.replay.engine import Answer
from rewind.replay.faults import Hang, Reset, Serve, fault_action
from rewind.replay.modes import OnMiss

# How long an injected timeout holds a request at most (the run's own bound ends it sooner).
HANG_BOUND_S = 3600.0


@dataclass(frozen=True)
class ForkSpec:
    """What happens at the parent's step ``at``: ``response`` served, ``patch`` applied to
    the request body (it returns the patched bytes), or ``fault`` injected; none of them:
    the step goes live as the agent sends it."""

    at: int
    response: Serve | None = None
    patch: Callable[[bytes], bytes] | None = None
    fault: str | None = None
    retry_after_s: int = 1


@dataclass
class ForkState:
    """What happened at the fork, for the summary."""

    forked: bool = False
    fork_request: int | None = None  # the run's own step number for the forked request
    early: list[int] | None = None  # prefix steps never asked for when the run forked
    patch_error: str | None = None


class BranchAddon(ReplayAddon):
    """A replay that forks at one step; see the module's docstring."""

    def __init__(self, spec: ForkSpec, *args: Any, **kwargs: Any) -> None:
        kwargs["on_miss"] = OnMiss.ERROR if spec.fault is not None else OnMiss.LIVE
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.state = ForkState()
        self._fork_lock = threading.Lock()

    def request(self, flow: http.HTTPFlow) -> None:
        if is_passthrough(flow):
            return
        if self.spec.fault is not None:
            self._replay_with_fault(flow)
        elif self.state.forked:
            self.went_live()
        else:
            self._replay_until_fork(flow)

    def _claim_fork(self, flow: http.HTTPFlow) -> bool:
        """``True`` for the one request that is the fork."""
        with self._fork_lock:
            if self.state.forked:
                return False
            self.state.forked = True
            step = flow.metadata.get(META_STEP)
            self.state.fork_request = int(step) if step is not None else None
            return True

    def _replay_until_fork(self, flow: http.HTTPFlow) -> None:
        answer = self.engine.decide(self._incoming(flow))
        if answer.miss is None:
            self.answer(flow, answer)
            return
        if not self._claim_fork(flow):  # another connection forked first
            self.went_live()
            return
        self.state.early = [s.step for s in self.engine.matcher.unused()]
        if self.spec.response is not None:
            self._serve(flow, self.spec.response)
            return
        if self.spec.patch is not None:
            self._patch(flow, self.spec.patch)
        self.went_live()

    def _patch(self, flow: http.HTTPFlow, patch: Callable[[bytes], bytes]) -> None:
        """The request goes upstream with its body patched; a body the patch cannot apply
        to goes as sent, and the summary says why."""
        try:
            flow.request.set_content(patch(flow.request.get_content(strict=False) or b""))
        except Exception as exc:  # noqa: BLE001 - reported in the summary, the run goes on
            self.state.patch_error = str(exc)
            return
        flow.metadata.pop(META_PREPARED, None)  # prepared from the unpatched body, if at all

    def _replay_with_fault(self, flow: http.HTTPFlow) -> None:
        answer = self.engine.decide(self._incoming(flow))
        step = answer.step
        if step is not None and step.step == self.spec.at and self._claim_fork(flow):
            self.engine.matcher.put_back(step)  # a retry gets the recorded answer
            assert self.spec.fault is not None
            action = fault_action(self.spec.fault, step, answer.body, answer.chunks, self.spec.retry_after_s)
            self._inject(flow, action)
            return
        self.answer(flow, answer)

    def _inject(self, flow: http.HTTPFlow, action: Serve | Hang | Reset) -> None:
        if isinstance(action, Serve):
            self._serve(flow, action)
        elif isinstance(action, Hang):
            self.to_playback(flow, self.playback.register_hang(HANG_BOUND_S))
        else:
            flow.kill()  # type: ignore[no-untyped-call]

    def _serve(self, flow: http.HTTPFlow, serve: Serve) -> None:
        answer = Answer(serve.status, serve.reason, serve.headers, serve.body, chunks=serve.chunks)
        if serve.chunks is not None:
            self.play_stream(flow, answer, truncated=serve.truncated)
        else:
            flow.response = make_response(answer)
