"""A lean event engine with SimPy 4's exact scheduling semantics, for :mod:`.pipeline`.

The pipeline's timing depends on the order in which events of one cycle are processed (two DRAM
requests made in the same cycle are served in the order they were created), so a faster engine
must reproduce SimPy's order event for event. This module implements exactly the subset the
pipeline uses -- :class:`Environment` (``now``, ``timeout``, ``process``, ``run``), a capacity-1
:class:`Resource` (``request()`` as a context manager, ``count``, ``queue``), :class:`Container`
(``get``/``put`` of amounts, ``level``) and the unbounded :class:`Store` (``get``/``put``,
``items``) -- with SimPy 4.1's rules, none of its generality:

- events are processed in ``(time, priority, creation id)`` order, priority 0 for a process's
  start, 1 for everything else; an event's callbacks run in the order they were added (kept
  as a FIFO of the current time plus a heap of future timeouts: :class:`Environment`);
- a resource request/put/get is queued, its resource's *other* side is re-checked when it is
  processed, and the queue is scanned when it is created (a Resource and a Store stop after the
  first queued event, a Container goes on while events succeed: ``_do_put``/``_do_get`` return
  values of SimPy 4);
- a process resumes when the event it waits on is processed, and goes on at once with an event
  that was processed already.

What it leaves out (unused by the pipeline): failing events, interrupts, conditions, process
return values. :mod:`.pipeline` runs on it by default; ``tests/test_sim.py`` compares every field
of its results with SimPy's on random programs and real layers.
"""
from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from itertools import count
from typing import Any, Callable, Generator

_PENDING = object()  # value of an event not triggered yet
_DONE = object()  # waiter slot of a processed event

#: An event is a list ``[callback, waiter, value, arg]`` (a list: 4x cheaper to build than an
#: object, and events are most of the engine's work): ``callback`` is its resource's rescan
#: (None for timeouts and starts), ``waiter`` the resume of the one process waiting on it (None:
#: nobody yet; :data:`_DONE` once processed), ``value`` what the process receives
#: (:data:`_PENDING` until triggered), ``arg`` the amount / item / released request.
Event = list
_CB, _WAITER, _VALUE, _ARG = range(4)


class _Process:
    """Drives a generator: resumed with the value of each event it yields, once processed."""

    __slots__ = ("send", "resume")

    def __init__(self, env: "Environment", gen: Generator[Event, Any, Any]):
        if env._running:
            raise RuntimeError("lean_des: processes must be created before Environment.run()")
        self.send = gen.send
        self.resume = self._resume  # bound once: the waiter of every event the process yields
        env._starts.append([None, self.resume, None, None])  # SimPy's Initialize: URGENT, first at time 0

    def _resume(self, event: Event) -> None:
        send = self.send
        while True:
            try:
                event = send(event[_VALUE])
            except StopIteration:
                return  # nobody waits on a pipeline process: its own completion event is not needed
            waiter = event[_WAITER]
            if waiter is None:
                event[_WAITER] = self.resume
                return
            if waiter is not _DONE:
                raise RuntimeError("lean_des: one process at most may wait on an event")


class Environment:
    """Time, the event queues and the factories the pipeline uses.

    SimPy processes events in ``(time, priority, creation id)`` order. Here the events of the
    current time are a FIFO (:attr:`_now_queue`) and only timeouts with a positive delay go to a
    heap of ``(time, creation id, event)``: every event triggered at time ``t`` is created at
    ``t`` (so after every timeout that fires at ``t``, which was created earlier), and when time
    advances to ``t`` the queue is empty, so moving the heap's events of time ``t`` to the queue
    (in heap order) and then appending new ones in creation order is SimPy's order. Process
    starts (priority 0) are created before :meth:`run` and run first, in creation order. An
    event's callbacks run in SimPy's order: its resource's rescan (added at creation), then the
    waiting process."""

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Event]] = []
        self._now_queue: deque[Event] = deque()
        self._starts: list[Event] = []
        self._eid = count()
        self._running = False

    def timeout(self, delay: int) -> Event:
        ev = [None, None, None, None]
        if delay:
            heappush(self._heap, (self.now + delay, next(self._eid), ev))
        else:
            self._now_queue.append(ev)
        return ev

    def process(self, gen: Generator[Event, Any, Any]) -> None:
        _Process(self, gen)

    def run(self) -> None:
        self._running = True
        queue, heap = self._now_queue, self._heap
        queue.extendleft(reversed(self._starts))
        self._starts = []
        popleft = queue.popleft
        while True:
            while queue:
                event = popleft()
                waiter = event[_WAITER]
                event[_WAITER] = _DONE
                cb = event[_CB]
                if cb is not None:
                    cb(event)
                if waiter is not None:
                    waiter(event)
            if not heap:
                break
            t = heap[0][0]
            self.now = t
            while heap and heap[0][0] == t:
                queue.append(heappop(heap)[2])


def _remove(items: list, ev: Event) -> bool:
    """Remove ``ev`` from ``items`` by identity (events are lists: ``list.remove`` compares values)."""
    for i, x in enumerate(items):
        if x is ev:
            del items[i]
            return True
    return False


class _Queued:
    """A resource's put and get queues. SimPy scans a queue from its head when an event is created
    on it or one on the other side is processed: a Container goes on while events succeed, a Store
    and a Resource look at the head only (``_do_put``/``_do_get`` return values of SimPy 4); each
    subclass writes that scan out for its own rule."""

    def __init__(self, env: Environment):
        self.env = env
        self.put_queue: list[Event] = []
        self.get_queue: list[Event] = []
        self._on_put_done = self._trigger_get  # bound once (the callback of every put/get event)
        self._on_get_done = self._trigger_put
        self._ready = env._now_queue  # a succeeded event is processed after those already there

    def _trigger_put(self, _event: Event | None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _trigger_get(self, _event: Event | None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Container(_Queued):
    """SimPy's ``Container`` (integer amounts)."""

    def __init__(self, env: Environment, capacity: int, init: int = 0):
        super().__init__(env)
        self.capacity = capacity
        self.level = init

    def put(self, amount: int) -> Event:
        ev = [self._on_put_done, None, _PENDING, amount]
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def get(self, amount: int) -> Event:
        ev = [self._on_get_done, None, _PENDING, amount]
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        while q and self.capacity - self.level >= q[0][_ARG]:
            ev = q.pop(0)
            self.level += ev[_ARG]
            ev[_VALUE] = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        while q and self.level >= q[0][_ARG]:
            ev = q.pop(0)
            self.level -= ev[_ARG]
            ev[_VALUE] = None
            self._ready.append(ev)


class Store(_Queued):
    """SimPy's ``Store`` of unbounded capacity (FIFO)."""

    def __init__(self, env: Environment):
        super().__init__(env)
        self.items: list[Any] = []

    def put(self, item: Any) -> Event:
        ev = [self._on_put_done, None, _PENDING, item]
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def get(self) -> Event:
        ev = [self._on_get_done, None, _PENDING, None]
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        if q:
            ev = q.pop(0)
            self.items.append(ev[_ARG])
            ev[_VALUE] = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        if q and self.items:
            ev = q.pop(0)
            ev[_VALUE] = self.items.pop(0)
            self._ready.append(ev)


class _Request(list):
    """A resource request event (the event list, plus SimPy's context-manager protocol)."""

    __slots__ = ("resource",)

    def __enter__(self) -> "_Request":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        res = self.resource
        if self[_VALUE] is _PENDING:  # SimPy's Put.cancel
            _remove(res.put_queue, self)
        if exc_type is not GeneratorExit:
            res.release(self)


class Resource(_Queued):
    """SimPy's ``Resource`` (first come, first served)."""

    def __init__(self, env: Environment, capacity: int = 1):
        super().__init__(env)
        self.capacity = capacity
        self.users: list[Event] = []

    @property
    def count(self) -> int:
        return len(self.users)

    @property
    def queue(self) -> list[Event]:
        return self.put_queue

    def request(self) -> _Request:
        ev = _Request((self._on_put_done, None, _PENDING, None))
        ev.resource = self
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def release(self, request: Event) -> Event:
        ev = [self._on_get_done, None, _PENDING, request]
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        if q and len(self.users) < self.capacity:
            ev = q.pop(0)
            self.users.append(ev)
            ev[_VALUE] = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        if q:
            ev = q.pop(0)
            _remove(self.users, ev[_ARG])
            ev[_VALUE] = None
            self._ready.append(ev)


__all__ = ["Container", "Environment", "Event", "Resource", "Store"]
