"""Beam's DoFn state/timer introspection, answered once per DoFn instance.

Beam asks `userstate.get_dofn_specs(dofn)` whenever it builds a DoFn's signature: when a ParDo is made, when
the graph is turned into the runner's protos, when the runner plans and when it runs a bundle, about four
times per DoFn. Each answer wraps every method `dir(dofn)` lists and takes its `inspect.signature`: for
nanguard's ~180 DoFns, 736 calls and 0.9 s of a 100-row run (with imports, a 100-row run is ~1.4x importing
TFDV; BENCHMARKS.md). The answer depends only on the instance's methods and their default arguments, fixed
when it is made (state and timer specs are declared as defaults), so it is kept per instance: a weak
reference checks that the instance asked is the one answered (an id can be reused once it is gone).
Instances that take no weak reference are answered by Beam every time.
"""
from __future__ import annotations

import functools
import threading
import weakref

from apache_beam.transforms import userstate

_lock = threading.Lock()
_answers: dict[int, tuple] = {}  # id(dofn) -> (weak reference to it, Beam's answer)


def _forget(key: int, ref: weakref.ref) -> None:
    with _lock:
        if _answers.get(key, (None,))[0] is ref:
            del _answers[key]


def _copy(answer: tuple) -> tuple:
    """(state specs, timer specs) as new sets: a caller may change what it gets, never what is kept."""
    return tuple(set(specs) for specs in answer)


def answered_once(beams_own):
    """beams_own (Beam's get_dofn_specs, or anything with its signature) answering once per DoFn instance."""
    @functools.wraps(beams_own)
    def get_dofn_specs(dofn):
        key = id(dofn)
        with _lock:
            known = _answers.get(key)
        if known is not None and known[0]() is dofn:
            return _copy(known[1])
        answer = beams_own(dofn)
        try:
            ref = weakref.ref(dofn, lambda r, key=key: _forget(key, r))
        except TypeError:  # no weak reference (__slots__ without __weakref__): not kept
            return answer
        with _lock:
            _answers[key] = (ref, _copy(answer))
        return answer
    get_dofn_specs.beams_own = beams_own
    return get_dofn_specs


def install() -> None:
    """Make userstate.get_dofn_specs (which Beam's callers and userstate.is_stateful_dofn look up by name at
    each call) answer once per instance. Idempotent."""
    if not hasattr(userstate.get_dofn_specs, "beams_own"):
        userstate.get_dofn_specs = answered_once(userstate.get_dofn_specs)
